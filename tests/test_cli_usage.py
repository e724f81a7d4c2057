"""What a new user meets first: usage errors, config errors, a missing config file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult


@pytest.fixture(autouse=True)
def _no_config_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DURABILITY_CONFIG", raising=False)
    # the default file must be absent, whatever the machine has in /etc
    monkeypatch.setattr("durability.config.DEFAULT_PATH", str(tmp_path / "absent.toml"))


def test_bare_durability_gives_a_helpful_usage(cli: Callable[..., CliResult]) -> None:
    result = cli()
    assert result.code == 3
    assert "no command given" in result.stderr
    assert "raid" in result.stderr and "durability --help" in result.stderr
    assert "args" not in result.stderr.replace("arguments", "")  # no internal names


def test_unknown_command_is_a_usage_error_exit_3(cli: Callable[..., CliResult]) -> None:
    result = cli("raidd")
    assert result.code == 3 and "invalid choice: 'raidd'" in result.stderr


@pytest.mark.parametrize("value", ["bogus", "md0:", "md0:x", "md0:0", "sda1", "/dev/md0"])
def test_expect_bogus_is_rejected(cli: Callable[..., CliResult], value: str) -> None:
    result = cli("raid", "--no-state", "--expect", value)
    assert result.code == 3
    assert result.stderr.count("\n") == 1  # one clear line
    assert "--expect" in result.stderr and repr(value) in result.stderr


def test_expect_in_config_is_checked_the_same_way(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    path = tmp_path / "d.toml"
    path.write_text('[raid]\nexpect = ["md0:2", "bogus"]\n')
    result = cli("--config", path, "config", "validate")
    assert result.code == 3 and "At 'raid.expect'" in result.stderr and "'bogus'" in result.stderr


def test_usage_error_with_format_nagios_prints_the_status_line(
    cli: Callable[..., CliResult],
) -> None:
    result = cli("raid", "--format", "nagios", "--no-such-option")
    assert result.code == 3
    first = result.stdout.splitlines()[0]
    assert first.startswith("DURABILITY UNKNOWN - usage error: ")
    assert "--no-such-option" in first and ";" not in first


def test_usage_error_with_format_json_prints_an_unknown_document(
    cli: Callable[..., CliResult],
) -> None:
    result = cli("raid", "--format=json", "--no-such-option")
    document = json.loads(result.stdout)
    assert result.code == 3 and document["status"] == "UNKNOWN" and document["exit_code"] == 3


def test_bad_format_value_with_nagios_never_prints_nothing(
    cli: Callable[..., CliResult],
) -> None:
    # argparse rejects the value itself: the monitor still gets a line on stdout
    result = cli("raid", "--format", "nagios", "--format", "xml")
    assert result.code == 3
    assert result.stdout.startswith("DURABILITY UNKNOWN - usage error: ")


def test_config_errors_come_one_per_line_each_naming_its_key(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[raid]\nstall_after = 5\nstrict = true\n[smtp]\nport = "x"\n[nope]\n')
    result = cli("--config", path, "config", "validate")
    assert result.code == 3
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"durability: config error in {path} (4 problems): ")
    listed = [line.strip() for line in lines[1:]]
    assert len(listed) == 4 and all(line.startswith("At '") for line in listed)
    keys = {line.split("'")[1] for line in listed}
    assert keys == {"raid.stall_after", "raid.strict", "smtp.port", "nope"}
    assert not any(";" in line and "At '" in line.split(";", 1)[1] for line in lines)


def test_config_errors_in_nagios_format_list_every_problem_as_long_output(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[raid]\nstall_after = 5\nbogus = 1\n")
    result = cli("--config", path, "raid", "--format", "nagios")
    lines = result.stdout.splitlines()
    assert result.code == 3
    assert lines[0].startswith("DURABILITY UNKNOWN - config error in ")
    assert "(+1 more, listed below)" in lines[0]
    assert any("raid.stall_after" in line for line in lines[1:])
    assert any("raid.bogus" in line for line in lines[1:])


def test_missing_default_config_is_mentioned_by_snapshots(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    result = cli("snapshots")
    assert result.code == 3
    assert f"no config file ({tmp_path / 'absent.toml'} not found" in result.stdout
    assert "absent.toml" in result.stderr


def test_missing_default_config_is_mentioned_by_config_validate(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    result = cli("config", "validate")
    assert result.code == 0
    assert str(tmp_path / "absent.toml") in result.stdout


def test_named_config_that_does_not_exist_is_an_error(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    result = cli("--config", tmp_path / "nope.toml", "raid")
    assert result.code == 3 and "file not found" in result.stderr


def test_config_validate_fails_on_a_password_file_that_does_not_exist(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    missing = tmp_path / "smtp-password"
    path = tmp_path / "d.toml"
    path.write_text(f'[smtp]\nhost = "mail.example"\npassword_file = "{missing}"\n')
    result = cli("--config", path, "config", "validate")
    assert result.code == 3
    assert f"At 'smtp.password_file': no such file: {missing}" in result.stderr
    missing.write_text("secret\n")
    missing.chmod(0o600)
    assert cli("--config", path, "config", "validate").code == 0


def test_config_validate_checks_source_password_files(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    path = tmp_path / "d.toml"
    path.write_text(
        '[[snapshots.sources]]\nname = "r"\nkind = "restic"\n'
        f'repository = "{tmp_path}/repo"\npassword_file = "{tmp_path}/pw"\n'
    )
    result = cli("--config", path, "config", "validate")
    assert result.code == 3
    assert "At 'snapshots.sources[0].password_file': no such file" in result.stderr

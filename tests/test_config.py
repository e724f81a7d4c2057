"""Config: examples load, the sample round-trips, every problem is reported at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from durability.config import SECTIONS, load_config, parse_config, sample_config
from durability.errors import ConfigError
from durability.records import replace
from tests.conftest import REPO, CliResult

EXAMPLES = sorted((REPO / "examples").rglob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_load_config_every_example_is_valid(path: Path) -> None:
    config = load_config(str(path))
    config.validate()
    assert config.path == str(path)


def test_sample_config_uncommented_parses_back() -> None:
    lines = []
    for line in sample_config().splitlines():
        body = line[2:] if line.startswith("# ") else line
        if line.startswith("# ") and " = " in body and "(required)" not in body \
                and "(not set)" not in body and not body.startswith(" "):
            lines.append(body)
        elif line.startswith("["):
            lines.append(line)
    config = parse_config("\n".join(lines))
    assert config.raid.stall_after == 1800
    assert config.snapshots.max_age == 26 * 3600
    assert set(SECTIONS) >= {"state", "raid", "snapshots", "smtp", "web"}


def test_parse_config_reports_every_problem_with_its_key() -> None:
    text = """
    [raid]
    expect = ["md0:two"]
    stall_after = 30
    colour = "blue"
    [smtp]
    port = "twenty-five"
    security = "ssl"
    [snapshots]
    max_shrink = "130%"
    [[snapshots.sources]]
    name = "web"
    kind = "restic"
    [[snapshots.sources]]
    name = "web"
    kind = "s3"
    bucket = "b"
    [nonsense]
    """
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "test.toml")
    problems = caught.value.problems
    for key in ("'raid.expect'", "'raid.stall_after'", "'raid.colour'", "'smtp.port'",
                "'smtp.security'", "'snapshots.max_shrink'", "'nonsense'",
                "'snapshots.sources[0].repository'", "'snapshots.sources[1].name'"):
        assert any(key in p for p in problems), (key, problems)
    assert all(p.startswith("At '") for p in problems)


def test_parse_config_unknown_key_suggests_the_right_one() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('[raid]\nstal_after = "5m"\n')
    assert caught.value.problems == ["At 'raid.stal_after': unknown key (did you mean 'stall_after'?)"]


def test_parse_config_lazy_checks_only_the_sections_used() -> None:
    config = parse_config('[smtp]\nport = "x"\n[raid]\nstall_after = "10m"\n', lazy=True)
    assert config.raid.stall_after == 600  # [smtp] is broken but not needed here
    with pytest.raises(ConfigError) as caught:
        _ = config.smtp
    assert "At 'smtp.port'" in caught.value.problems[0]


def test_settings_are_frozen_and_replaceable() -> None:
    config = parse_config('[raid]\nexpect = ["md0:2"]\n')
    with pytest.raises(AttributeError):
        config.raid.expect = ()  # type: ignore[misc]
    changed = replace(config.raid, proc_root="/tmp/x")
    assert changed.proc_root == "/tmp/x" and changed.expect == ("md0:2",)


def test_cli_config_validate_lists_all_problems_and_exits_3(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[raid]\nstall_after = 3\n[web]\nlisten = 8080\n')
    result = cli("config", "validate", "--config", bad)
    assert result.code == 3
    assert "2 problems" in result.stderr
    assert "raid.stall_after" in result.stderr and "web.listen" in result.stderr


def test_cli_config_validate_ok(cli: Callable[..., CliResult]) -> None:
    result = cli("config", "validate", "--config", REPO / "examples" / "durability.toml")
    assert result.code == 0 and result.stdout.startswith("OK: ")


def test_cli_config_sample_prints_every_section(cli: Callable[..., CliResult]) -> None:
    result = cli("config", "sample")
    assert result.code == 0
    for name in SECTIONS:
        assert f"[{name}]" in result.stdout


def test_load_config_lazy_reuses_parse_cache_until_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import sys

    monkeypatch.setenv("DURABILITY_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "d.toml"
    path.write_text('[raid]\nstall_after = "10m"\n')
    assert load_config(str(path), lazy=True).raid.stall_after == 600
    cached = list((tmp_path / "cache").iterdir())
    assert len(cached) == 1 and (cached[0].stat().st_mode & 0o777) == 0o600
    monkeypatch.setitem(sys.modules, "tomllib", None)  # any TOML parse would now fail
    assert load_config(str(path), lazy=True).raid.stall_after == 600
    path.write_text('[raid]\nstall_after = "20m"\n')
    os.utime(path, ns=(1, 1))  # a different identity even within one clock tick
    with pytest.raises(ImportError):
        load_config(str(path), lazy=True)  # changed file: parsed again, not served stale
    monkeypatch.delitem(sys.modules, "tomllib")
    assert load_config(str(path), lazy=True).raid.stall_after == 1200


def test_load_config_ignores_a_cache_others_can_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DURABILITY_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "d.toml"
    path.write_text('[raid]\nstall_after = "10m"\n')
    load_config(str(path), lazy=True)
    cache = next((tmp_path / "cache").iterdir())
    text = cache.read_text().replace('"10m"', '"99m"')
    cache.write_text(text)
    cache.chmod(0o666)
    assert load_config(str(path), lazy=True).raid.stall_after == 600


def test_load_config_lazy_still_validates_cached_sections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DURABILITY_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "d.toml"
    path.write_text('[raid]\nstall_after = 10\n')
    for _ in range(2):  # first from TOML, then from the cache
        with pytest.raises(ConfigError) as caught:
            _ = load_config(str(path), lazy=True).raid
        assert "raid.stall_after" in caught.value.problems[0]

"""`durability snapshots` as a command: options, config errors, formats, history."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from durability.model import now_utc
from tests.conftest import CliResult
from tests.snapshots.conftest import ResticRepo
from tests.snapshots.test_restic_source import restic_toml, stamp

Cli = Callable[..., CliResult]


def test_run_no_sources_unknown(cli: Cli, write_config: Callable[[str], Path]) -> None:
    result = cli("--config", write_config(""), "snapshots", "--format", "json")
    assert result.code == 3
    assert "no snapshot sources configured" in json.loads(result.stdout)["summary"]


def test_run_unknown_source_name_unknown(cli: Cli, write_config: Callable[[str], Path],
                                         tmp_path: Path) -> None:
    config = write_config(restic_toml(str(tmp_path / "r"), tmp_path / "pw"))
    result = cli("--config", config, "snapshots", "--source", "nope")
    assert result.code == 3
    assert "no such snapshot source: nope (configured: web-restic)" in result.stderr


def test_run_bad_now_unknown(cli: Cli, write_config: Callable[[str], Path],
                             tmp_path: Path) -> None:
    config = write_config(restic_toml(str(tmp_path / "r"), tmp_path / "pw"))
    result = cli("--config", config, "snapshots", "--now", "yesterday")
    assert result.code == 3
    assert "--now: not an ISO-8601 time" in result.stderr


def test_run_config_errors_listed_at_once(cli: Cli, write_config: Callable[[str], Path]) -> None:
    config = write_config(
        '[[snapshots.sources]]\nname = "a"\nkind = "s3"\ngroup_by = "(unclosed"\n'
        'max_age = 5\n'
        '[[snapshots.sources]]\nname = "b"\nkind = "restic"\n'
    )
    result = cli("--config", config, "snapshots", "--format", "json")
    assert result.code == 3
    assert "snapshots.sources[0].group_by" in result.stderr
    assert "snapshots.sources[0].max_age" in result.stderr
    assert json.loads(result.stdout)["status"] == "UNKNOWN"


def test_run_config_missing_keys_per_kind(cli: Cli, write_config: Callable[[str], Path]) -> None:
    config = write_config(
        '[[snapshots.sources]]\nname = "a"\nkind = "s3"\n'
        '[[snapshots.sources]]\nname = "b"\nkind = "restic"\n'
    )
    result = cli("--config", config, "snapshots")
    assert result.code == 3
    assert "snapshots.sources[0].bucket" in result.stderr
    assert "snapshots.sources[1].repository" in result.stderr


def test_run_prometheus_gauges_and_history(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo, tmp_path: Path
) -> None:
    restic_repo.backup(stamp(2), size=1234)
    config = write_config(restic_toml(restic_repo.repository, restic_repo.password_file))
    out = tmp_path / "snapshots.prom"
    result = cli("--config", config, "snapshots", "--format", "prometheus", "--output", out)
    assert result.code == 0, result.stderr
    text = out.read_text()
    assert 'durability_snapshot_age_seconds{check="snapshots",source="web-restic",target="web-restic/web1:' in text
    assert "durability_snapshot_count{" in text
    assert "durability_snapshot_newest_size_bytes{" in text and "1234.0" in text
    assert 'durability_check_status{check="snapshots"' in text
    history = cli("--config", config, "history", "--check", "snapshots", "--format", "json")
    rows = json.loads(history.stdout)["history"]
    assert rows and rows[0]["data"]["source"] == "web-restic"


def test_run_check_includes_snapshots(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo
) -> None:
    restic_repo.backup(stamp(40))
    config = write_config("[raid]\nenabled = false\n"
                          + restic_toml(restic_repo.repository, restic_repo.password_file))
    result = cli("--config", config, "check", "--format", "json")
    doc = json.loads(result.stdout)
    assert result.code == 2
    assert any(r["check"] == "snapshots" and r["status"] == "CRITICAL" for r in doc["results"])


def test_run_now_option_judges_as_of_that_time(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo
) -> None:
    restic_repo.backup(stamp(1))
    config = write_config(restic_toml(restic_repo.repository, restic_repo.password_file))
    assert cli("--config", config, "snapshots").code == 0
    later = (now_utc() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")
    assert cli("--config", config, "snapshots", "--now", later).code == 2


def test_run_config_group_by_unknown_group_rejected(
    cli: Cli, write_config: Callable[[str], Path]
) -> None:
    config = write_config('[[snapshots.sources]]\nname = "a"\nkind = "s3"\nbucket = "b"\n'
                          'group_by = "(?P<customer>[^/]+)/"\n')
    result = cli("--config", config, "snapshots")
    assert result.code == 3
    assert "unknown named group(s) customer" in result.stderr

"""`durability history restore-test`: past tests with duration, throughput and verdict."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from durability.restore.history import render_restore_history, restore_history_row
from tests.conftest import CliResult
from tests.restore.conftest import Repo

Cli = Callable[..., CliResult]


def test_history_restore_test_lists_tests_newest_first_with_speed(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path]
) -> None:
    config = restore_config(small_repo)
    assert cli("--config", config, "restore-test").code == 0
    assert cli("--config", config, "restore-test", "--snapshot", "cafebabe").code == 3
    text = cli("--config", config, "history", "restore-test")
    assert text.code == 0
    lines = text.stdout.splitlines()
    assert lines[0].split()[:4] == ["WHEN", "STATUS", "SOURCE", "SNAPSHOT"]
    assert "UNKNOWN" in lines[1] and "snapshot cafebabe not found" in lines[1]
    assert "OK" in lines[2] and "/s" in lines[2] and small_repo.snapshot_id[:8] in lines[2]
    doc = json.loads(cli("--config", config, "history", "--check", "restore-test",
                         "--format", "json").stdout)
    assert doc["schema_version"] == 1
    rows = doc["history"]
    assert [r["status"] for r in rows] == ["UNKNOWN", "OK"]
    assert set(rows[0]) == {"check", "target", "status", "summary", "checked_at", "data"}
    assert rows[1]["data"]["bytes_per_second"] > 0


def test_history_positional_and_option_disagree_exit_3(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path]
) -> None:
    result = cli("--config", restore_config(small_repo), "history", "raid", "--check",
                 "restore-test")
    assert result.code == 3
    assert "disagree" in result.stderr


def test_restore_history_row_failed_test_shows_dashes() -> None:
    row = restore_history_row(
        {"checked_at": "2026-11-25T10:00:00Z", "status": "UNKNOWN", "target": "site",
         "summary": "wrong password", "data": {"kind": "restic", "seconds": {}}}
    )
    assert row["speed"] == "-" and row["duration"] == "-" and row["full"] == "-"
    assert render_restore_history([]) == ""

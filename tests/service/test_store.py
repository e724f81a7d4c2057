"""The state store on SQLite and PostgreSQL: history, retention and bad conditions.

Every test builds its store through `write_config`, so the same tests run on
PostgreSQL with DURABILITY_TEST_STATE=postgresql.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from durability.errors import StateError
from durability.model import Status
from durability.state.store import open_sqlite
from tests.conftest import REPO, CliResult
from tests.service.helpers import hours, make_report, open_configured_store

RAID_OFF = "[raid]\nenabled = false\n"


def test_record_report_then_history_newest_first(write_config: Callable[[str], Path]) -> None:
    store = open_configured_store(write_config(""))
    try:
        first = make_report(when=make_report().checked_at)
        later = make_report(when=first.checked_at + hours(1), status=Status.WARNING)
        store.record_report(first)
        store.record_report(later)
        rows = store.history(check="raid")
    finally:
        store.close()
    assert [r["status"] for r in rows] == ["WARNING", "WARNING", "OK", "OK"]
    assert rows[0]["checked_at"] == "2026-11-25T11:00:00Z"
    assert rows[-1]["data"] == {"index": 0}


def test_history_target_and_range_only_matching_rows(write_config: Callable[[str], Path]) -> None:
    store = open_configured_store(write_config(""))
    base = make_report().checked_at
    try:
        for step in range(5):
            store.record_report(make_report(when=base + hours(step)))
        rows = store.history(target="md1", since=base + hours(1), until=base + hours(3))
    finally:
        store.close()
    assert [r["checked_at"] for r in rows] == [
        "2026-11-25T13:00:00Z", "2026-11-25T12:00:00Z", "2026-11-25T11:00:00Z"
    ]
    assert {r["target"] for r in rows} == {"md1"}


def test_prune_history_older_rows_removed_newer_kept(write_config: Callable[[str], Path]) -> None:
    store = open_configured_store(write_config(""))
    base = make_report().checked_at
    try:
        for step in range(4):
            store.record_report(make_report(when=base + hours(step)))
        removed = store.prune_history(base + hours(2), batch=3)
        rows = store.history()
    finally:
        store.close()
    assert removed == 4
    assert sorted({r["checked_at"] for r in rows}) == [
        "2026-11-25T12:00:00Z", "2026-11-25T13:00:00Z"
    ]


def test_history_cli_json_filters_by_check_and_since(
    cli: Callable[..., CliResult], write_config: Callable[[str], Path]
) -> None:
    config = write_config(RAID_OFF)
    store = open_configured_store(config)
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        store.record_report(make_report("raid", when=now - hours(1)))
        store.record_report(make_report("snapshots", when=now - hours(2)))
        store.record_report(make_report("raid", when=now - hours(30)))
    finally:
        store.close()
    result = cli("--config", config, "history", "--check", "raid", "--since", "1d",
                 "--format", "json")
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema_version"] == 1
    assert [(r["check"], r["target"]) for r in document["history"]] == [
        ("raid", "md1"), ("raid", "md0")
    ]
    assert set(document["history"][0]) == {"check", "target", "status", "summary",
                                           "checked_at", "data"}
    text = cli("--config", config, "history", "--check", "snapshots")
    assert text.code == 0
    assert "snapshots" in text.stdout and "md0: array 0" in text.stdout


def test_history_cli_unreachable_store_exits_3_with_reason(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[state]\nurl = "postgresql://nobody:secret@127.0.0.1:1/none"\n')
    result = cli("--config", config, "history")
    assert result.code == 3
    assert "cannot open state store postgresql://nobody:***@127.0.0.1:1/none" in result.stderr
    assert "secret" not in result.stderr


def test_record_report_locked_database_state_error_nothing_written(
    write_config: Callable[[str], Path],
) -> None:
    config = write_config("")
    store = open_configured_store(config)
    store.record_report(make_report())
    if store.dialect == "sqlite":
        store.close()
        store = open_sqlite(store.location, timeout=0.2)
        holder = sqlite3.connect(store.location, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    else:
        import psycopg

        store.execute("SET lock_timeout = '200ms'")
        url = _config_url(config)
        holder = psycopg.connect(url)
        holder.execute("LOCK TABLE results IN ACCESS EXCLUSIVE MODE")
    try:
        with pytest.raises(StateError, match=r"state store .*(locked|lock timeout)"):
            store.record_report(make_report(when=make_report().checked_at + hours(1)))
    finally:
        holder.rollback()
        holder.close()
    try:
        assert len(store.history()) == 2
    finally:
        store.close()


def _config_url(config: Path) -> str:
    from durability.config import load_config

    url = load_config(str(config)).state.url
    assert url
    return url


@pytest.mark.root
def test_record_report_full_disk_state_error_earlier_runs_intact(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True)
    try:
        store = open_sqlite(str(mount / "state.db"), timeout=0.5)
        recorded = 0
        with pytest.raises(StateError, match="full"):
            for step in range(10_000):
                store.record_report(make_report(when=make_report().checked_at + hours(step),
                                                targets=20))
                recorded += 1
        store.close()
        reopened = open_sqlite(str(mount / "state.db"))
        rows = reopened.query("SELECT run_id, COUNT(*) FROM results GROUP BY run_id")
        reopened.close()
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
    assert recorded > 0
    assert len(rows) == recorded
    assert {count for _, count in rows} == {20}


WRITER = textwrap.dedent(
    """
    import sys
    from tests.service.helpers import make_report, open_configured_store, hours
    store = open_configured_store(sys.argv[1])
    base = make_report().checked_at
    step = 0
    while True:
        run = store.record_report(make_report(when=base + hours(step), targets=300))
        print(run, flush=True)
        step += 1
    """
)


def test_record_report_killed_writer_every_run_whole(write_config: Callable[[str], Path]) -> None:
    config = write_config("")
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(config)], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert writer.stdout is not None
    committed = [writer.stdout.readline().strip() for _ in range(5)]
    time.sleep(0.2)
    os.kill(writer.pid, signal.SIGKILL)
    rest, _ = writer.communicate(timeout=10)
    committed += [line for line in rest.splitlines() if line]
    store = open_configured_store(config)
    try:
        rows = store.query("SELECT run_id, COUNT(*) FROM results GROUP BY run_id")
    finally:
        store.close()
    counts = dict(rows)
    assert set(committed) <= set(counts)
    assert set(counts.values()) == {300}


MIGRATOR = textwrap.dedent(
    """
    import sys
    from tests.service.helpers import make_report, open_configured_store
    store = open_configured_store(sys.argv[1])
    store.record_report(make_report(targets=3))
    store.close()
    print("ok", flush=True)
    """
)


def test_migrate_four_processes_at_once_all_succeed(write_config: Callable[[str], Path]) -> None:
    config = write_config("")
    writers = [
        subprocess.Popen([sys.executable, "-c", MIGRATOR, str(config)], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [writer.communicate(timeout=60) for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0, 0, 0], outputs
    store = open_configured_store(config)
    try:
        versions = store.query("SELECT component, version FROM schema_migrations")
        count = store.query_one("SELECT COUNT(*) FROM results")
    finally:
        store.close()
    assert versions == [("core", 1)]
    assert count == (12,)

"""History-based RAID rules: stalls, scrub age, inventory, vanished arrays, acks, events."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from durability.config import load_config, parse_config
from durability.config.raid import RaidSettings
from durability.model import Report, Status
from durability.raid import history
from durability.raid.check import gather, run_raid
from durability.state.store import Store, open_store
from tests.conftest import CliResult
from tests.raid.conftest import MdTree

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(state_toml: str) -> Store:
    settings = parse_config(state_toml).state  # SQLite, or PostgreSQL in the second pass
    opened = open_store(settings.path, settings.url)
    yield opened
    opened.close()


def judge(tree: MdTree, store: Store, now: datetime, **settings: object) -> Report:
    config = RaidSettings(proc_root=str(tree.proc), sys_root=str(tree.sys), **settings)
    return run_raid(config, {}, store, now, smart=False)


def status_of(report: Report, target: str = "md0") -> Status:
    return [r for r in report.results if r.target == target][0].status


def test_rebuild_without_progress_for_stall_after_is_critical(
    md_tree: Callable[[str], MdTree], store: Store
) -> None:
    tree = md_tree("raid1-recovery")
    assert status_of(judge(tree, store, T0)) is Status.WARNING
    assert status_of(judge(tree, store, T0 + timedelta(minutes=20))) is Status.WARNING
    report = judge(tree, store, T0 + timedelta(minutes=31))
    assert status_of(report) is Status.CRITICAL
    assert "rebuilding stalled at 6.3%: no progress for 31m" in report.results[0].summary


def test_rebuild_making_progress_stays_warning(
    md_tree: Callable[[str], MdTree], store: Store
) -> None:
    tree = md_tree("raid1-recovery")
    for step in range(5):
        tree.set("sync_completed", f"{8192 + step * 4096} / 129024")
        report = judge(tree, store, T0 + timedelta(minutes=20 * step))
        assert status_of(report) is Status.WARNING


def test_scrub_seen_finishing_resets_scrub_age(
    md_tree: Callable[[str], MdTree], store: Store
) -> None:
    running = md_tree("raid1-check")
    done = md_tree("raid1-check-done")
    judge(running, store, T0)
    assert status_of(judge(done, store, T0 + timedelta(hours=1))) is Status.OK
    assert status_of(judge(done, store, T0 + timedelta(days=30))) is Status.OK
    report = judge(done, store, T0 + timedelta(days=36))
    assert status_of(report) is Status.WARNING
    assert "last completed scrub 35d" in report.results[0].summary


def test_no_scrub_seen_within_scrub_max_age_warns(
    md_tree: Callable[[str], MdTree], store: Store
) -> None:
    tree = md_tree("raid1-clean")
    assert status_of(judge(tree, store, T0)) is Status.OK
    report = judge(tree, store, T0 + timedelta(days=40))
    assert status_of(report) is Status.WARNING
    assert "no completed scrub seen" in report.results[0].summary


def test_mdadm_rebuild_finished_event_records_a_scrub(
    md_tree: Callable[[str], MdTree], store: Store
) -> None:
    judge(md_tree("raid1-check"), store, T0)
    history.record_event(store, "RebuildFinished", "/dev/md0", None, T0 + timedelta(minutes=5))
    assert status_of(judge(md_tree("raid1-clean"), store, T0 + timedelta(days=34))) is Status.OK
    assert history.recent_events(store)[0][1:3] == ("RebuildFinished", "/dev/md0")


def test_fewer_spares_than_inventory_warns(md_tree: Callable[[str], MdTree], store: Store) -> None:
    assert status_of(judge(md_tree("raid1-spare"), store, T0)) is Status.OK
    report = judge(md_tree("raid1-clean"), store, T0 + timedelta(minutes=5))
    assert status_of(report) is Status.WARNING
    assert "0 hot spare(s), inventory has 1" in report.results[0].summary


def _give_serials(tree: MdTree, serials: dict[str, str]) -> None:
    for device, serial in serials.items():
        folder = tree.sys / "class" / "block" / device / "device"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "serial").write_text(serial + "\n")
        (folder / "model").write_text("TESTDISK\n")


def test_swapped_member_disk_warns_until_acknowledged(
    md_tree: Callable[[str], MdTree], store: Store
) -> None:
    tree = md_tree("raid1-clean")
    _give_serials(tree, {"vda": "SER-A", "vdb": "SER-B"})
    first = judge(tree, store, T0)
    assert status_of(first) is Status.OK
    assert first.results[0].data["members"][0]["serial"] == "SER-A"
    _give_serials(tree, {"vdb": "SER-C"})
    report = judge(tree, store, T0 + timedelta(minutes=5))
    assert status_of(report) is Status.WARNING
    assert "gone SER-B; new SER-C" in report.results[0].summary
    facts = [
        a
        for a in gather(
            RaidSettings(proc_root=str(tree.proc), sys_root=str(tree.sys)), False
        ).arrays
    ][0]
    history.acknowledge(store, facts, "md0", T0 + timedelta(minutes=6))
    assert status_of(judge(tree, store, T0 + timedelta(minutes=10))) is Status.OK


def test_array_that_disappeared_is_critical_until_acknowledged(
    md_tree: Callable[[str], MdTree], store: Store, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    judge(md_tree("raid1-clean"), store, T0)
    empty = md_tree("empty")
    report = judge(empty, store, T0 + timedelta(minutes=5))
    assert report.status is Status.CRITICAL
    assert "recorded in the inventory" in report.results[0].summary
    history.acknowledge(store, None, "md0", T0 + timedelta(minutes=6))
    assert judge(empty, store, T0 + timedelta(minutes=10)).status is Status.OK


def test_errors_above_acknowledged_value_warn(
    md_tree: Callable[[str], MdTree], store: Store
) -> None:
    tree = md_tree("raid1-clean")
    tree.set("dev-vdb/errors", "5")
    assert status_of(judge(tree, store, T0)) is Status.WARNING
    facts = gather(RaidSettings(proc_root=str(tree.proc), sys_root=str(tree.sys)), False).arrays[0]
    history.acknowledge(store, facts, "md0", T0)
    assert status_of(judge(tree, store, T0 + timedelta(minutes=5))) is Status.OK
    tree.set("dev-vdb/errors", "7")
    report = judge(tree, store, T0 + timedelta(minutes=10))
    assert status_of(report) is Status.WARNING
    assert "7 read error(s) corrected (acknowledged: 5)" in report.results[0].summary


def test_cli_ack_then_mismatch_is_ok(
    md_tree: Callable[[str], MdTree], cli: Callable[..., CliResult], write_config
) -> None:
    tree = md_tree("raid1-mismatch")
    config = write_config()
    assert cli("--config", config, "raid", *tree.args()).code == 1
    ack = cli("--config", config, "raid", "ack", "md0", *tree.args())
    assert ack.code == 0 and "mismatch_cnt 2048" in ack.stdout
    assert cli("--config", config, "raid", *tree.args()).code == 0


def test_cli_event_records_and_checks(
    md_tree: Callable[[str], MdTree], cli: Callable[..., CliResult], write_config, tmp_path: Path
) -> None:
    tree = md_tree("raid1-faulty")
    config = write_config()
    result = cli("--config", config, "raid", "event", "Fail", "/dev/md0", "/dev/vdb", *tree.args())
    assert result.code == 2
    assert result.stdout.startswith("CRITICAL: md0 degraded")
    settings = load_config(str(config)).state
    store = open_store(settings.path, settings.url)  # SQLite or PostgreSQL, as configured
    assert history.recent_events(store)[0][1:] == ("Fail", "/dev/md0", "/dev/vdb")
    rows = store.history(check="raid")
    assert rows[0]["target"] == "md0" and rows[0]["status"] == "CRITICAL"
    store.close()


def test_cli_unwritable_store_keeps_the_verdict_and_says_so(
    md_tree: Callable[[str], MdTree], cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    config = tmp_path / "c.toml"
    config.write_text(f'[state]\npath = "{blocker}/state.db"\n')
    result = cli("--config", config, "raid", *md_tree("raid1-faulty").args(), "--format", "json")
    assert result.code == 2
    assert "state store not available" in result.stdout


def test_record_observations_prunes_old_rows(
    md_tree: Callable[[str], MdTree], store: Store
) -> None:
    tree = md_tree("raid1-clean")
    config = RaidSettings(proc_root=str(tree.proc), sys_root=str(tree.sys))
    run_raid(config, {}, store, T0, smart=False, retention_seconds=86400)
    run_raid(config, {}, store, T0 + timedelta(days=2), smart=False, retention_seconds=86400)
    rows = store.query("SELECT observed_at FROM raid_observations")
    assert rows == [("2026-11-03T12:00:00Z",)]
    shutil.rmtree(tree.sys)

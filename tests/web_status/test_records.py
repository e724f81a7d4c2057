"""The features' read functions behind the status page: what each returns, and that none writes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from durability.model import Report, Result, Status
from durability.remind.state import natural_key
from durability.state.store import Store, open_store
from tests.web_status.conftest import NOW


@pytest.fixture
def store(write_config: Callable[[str], Path]) -> Store:
    from durability.config import load_config

    config = load_config(str(write_config("")))
    return open_store(config.state.path, config.state.url)


def test_natural_key_numbers_by_value() -> None:
    ids = ["c-10000", "c-1001", "c-999", "C-5", "c-0007", "x2y10", "x2y9", "x10y1", "abc", "9"]
    assert sorted(ids, key=natural_key) == [
        "9", "abc", "C-5", "c-0007", "c-999", "c-1001", "c-10000", "x2y9", "x2y10", "x10y1"]


def test_read_functions_on_empty_store_return_nothing_and_create_nothing(store: Store) -> None:
    from durability.raid import history as raid_history
    from durability.remind.state import customer_summary
    from durability.restore import history as restore_history
    from durability.snapshots import history as snapshot_history
    from durability.web import fleet

    since = NOW - timedelta(days=30)
    try:
        assert snapshot_history.age_series(store, since, NOW) == {}
        assert snapshot_history.latest(store) == {}
        assert restore_history.runs(store, since) == []
        assert raid_history.latest_verdicts(store) == []
        assert raid_history.daily_worst(store, since) == []
        assert fleet.latest(store) == []
        assert fleet.daily_worst(store, ["node-a"], since) == {}
        page = customer_summary(store, NOW)
        assert page.total == 0 and page.rows == () and page.counts["attention"] == 0
        assert not store.has_history()
        assert not store.is_current(snapshot_history.COMPONENT, snapshot_history.MIGRATIONS)
    finally:
        store.close()


def test_source_runs_oldest_set_and_worst_status() -> None:
    from durability.snapshots.history import source_runs

    runs = source_runs((
        Result("snapshots", "db/a", Status.OK, "fresh", data={"source": "db", "age_seconds": 60}),
        Result("snapshots", "db/b", Status.WARNING, "old",
               data={"source": "db", "age_seconds": 7200.0}),
        Result("snapshots", "web", Status.UNKNOWN, "unreadable", data={"source": "web"}),
    ), NOW, {"db": 3600.0})
    assert [(r.source, r.status, r.age_seconds, r.max_age_seconds) for r in runs] == [
        ("db", Status.WARNING, 7200.0, 3600.0), ("web", Status.UNKNOWN, None, None)]


def test_age_series_buckets_keep_the_peak_and_latest_is_newest(store: Store) -> None:
    from durability.snapshots.history import (
        SourceRun,
        age_series,
        latest,
        record_source_runs,
    )

    try:
        runs = [SourceRun("db", NOW - timedelta(hours=hours), Status.OK,
                          99_000.0 if hours == 100 else 3600.0, 26 * 3600.0)
                for hours in range(24 * 30, 0, -1)]
        runs.append(SourceRun("db", NOW, Status.CRITICAL, 200_000.0, 12 * 3600.0))
        record_source_runs(store, runs)
        series = age_series(store, NOW - timedelta(days=30), NOW, buckets=60)["db"]
        assert len(series.points) <= 61
        assert max(age for _, age in series.points) == 200_000.0
        assert 99_000.0 in [age for _, age in series.points]
        assert series.max_age_seconds == 12 * 3600.0
        newest = latest(store)["db"]
        assert newest.status is Status.CRITICAL and newest.checked_at == NOW
    finally:
        store.close()


def test_restore_runs_typed_oldest_first(store: Store) -> None:
    from durability.restore.history import runs

    try:
        for days in (2, 1):
            store.record_report(Report("restore-test", NOW - timedelta(days=days), (
                Result("restore-test", "db", Status.OK if days == 2 else Status.CRITICAL,
                       f"run {days}", data={"source": "db", "seconds": {"restore": 5.0,
                                                                        "total": 7.5},
                                             "rto_target_seconds": 600}),)))
        found = runs(store, NOW - timedelta(days=30))
        assert [(r.summary, r.status, r.seconds, r.rto_target_seconds) for r in found] == [
            ("run 2", Status.OK, 7.5, 600.0), ("run 1", Status.CRITICAL, 7.5, 600.0)]
    finally:
        store.close()


def test_raid_latest_verdicts_only_the_raid_check_of_the_latest_run(store: Store) -> None:
    from durability.raid.history import latest_verdicts

    try:
        store.record_report(Report("raid", NOW - timedelta(hours=1), (
            Result("raid", "md0", Status.CRITICAL, "old"),)))
        store.record_report(Report("all", NOW, (
            Result("raid", "md0", Status.OK, "clean"),
            Result("snapshots", "db/a", Status.OK, "fresh"))))
        assert [(v.target, v.status, v.summary) for v in latest_verdicts(store)] == [
            ("md0", Status.OK, "clean")]
    finally:
        store.close()


def test_fleet_daily_worst_many_nodes(store: Store) -> None:
    from durability.web.fleet import NodeReport, daily_worst, latest, record_node_report

    try:
        names = [f"n{i:03d}" for i in range(450)]
        for index, node in enumerate(names):
            for days in (2, 1):
                status = Status.CRITICAL if index % 150 == 0 and days == 2 else Status.OK
                record_node_report(store, NodeReport(node, Report("raid", NOW - timedelta(
                    days=days), (Result("raid", "md0", status, status.name),))), NOW)
        found = daily_worst(store, names, NOW - timedelta(days=30))
        assert len(found) == 450
        day = (NOW - timedelta(days=2)).strftime("%Y-%m-%d")
        assert sorted(n for n, days in found.items() if dict(days)[day] is Status.CRITICAL) == [
            "n000", "n150", "n300"]
        nodes = {n.node: n for n in latest(store)}
        assert nodes["n000"].targets[0].status is Status.OK
        assert nodes["n000"].checked_at == NOW - timedelta(days=1)
    finally:
        store.close()


def test_customer_summary_counts_cover_everyone_whatever_the_search(store: Store) -> None:
    from durability.remind import state as remind_state
    from durability.remind.customers import parse_customers_csv

    try:
        remind_state.import_customers(store, parse_customers_csv(
            "id,email,name,language,last_copy_at\n"
            "a-2,ann@example.com,Ann,en,2026-11-20T00:00:00Z\n"
            "a-10,bo@example.com,Bo,en,\n"
            "a-1,cy@example.com,Cy Żak,pl,2026-01-01T00:00:00Z\n"), NOW - timedelta(days=5))
        page = remind_state.customer_summary(store, NOW, q="żak")
        assert [row.id for row in page.rows] == ["a-1"]
        assert page.counts == {"attention": 0, "overdue": 1, "no-copy": 1, "snoozed": 0,
                               "unsubscribed": 0, "ok": 1}
        assert (page.total, page.matched) == (3, 1)
        row = page.rows[0]
        assert (row.name, row.email, row.category) == ("Cy Żak", "cy@example.com", "overdue")
        assert row.due_since == datetime(2026, 1, 31, tzinfo=UTC)
        ordered = remind_state.customer_summary(store, NOW, order=("ok", "overdue", "no-copy"))
        assert [r.id for r in ordered.rows] == ["a-2", "a-1", "a-10"]
    finally:
        store.close()


@pytest.mark.slow
def test_snapshots_command_records_each_source_age_for_the_page(
    cli: Callable[..., object], write_config: Callable[[str], Path], seaweedfs: object,
) -> None:
    from durability.config import load_config
    from durability.snapshots.history import age_series, latest
    from tests.snapshots.test_s3 import put, run_json, source_toml
    from tests.support.seaweed import SeaweedS3

    assert isinstance(seaweedfs, SeaweedS3)
    bucket = seaweedfs.make_bucket()
    put(seaweedfs, bucket, "c1/a.tar", 10)
    put(seaweedfs, bucket, "c2/a.tar", 10)
    path = write_config(source_toml(seaweedfs, bucket, group_by="^([^/]+)/", max_age="2h"))
    code, _ = run_json(cli, path)  # type: ignore[arg-type]
    assert code == 0
    config = load_config(str(path))
    store = open_store(config.state.path, config.state.url)
    try:
        newest = latest(store)["s3-backups"]
        assert newest.status is Status.OK and newest.max_age_seconds == 7200.0
        assert newest.age_seconds is not None and 0 <= newest.age_seconds < 600
        now = datetime.now(UTC)
        series = age_series(store, now - timedelta(days=1), now + timedelta(minutes=1))
        assert list(series) == ["s3-backups"] and len(series["s3-backups"].points) == 1
    finally:
        store.close()


def test_first_recording_fills_ages_from_the_results_history(store: Store) -> None:
    from durability.snapshots.history import age_series, record_source_runs, source_runs

    try:
        for hours in (48, 24):
            store.record_report(Report("snapshots", NOW - timedelta(hours=hours), (
                Result("snapshots", "db/a", Status.OK, "fresh",
                       data={"source": "db", "age_seconds": 1000.0 + hours}),)))
        record_source_runs(store, source_runs((
            Result("snapshots", "db/a", Status.OK, "fresh",
                   data={"source": "db", "age_seconds": 5.0}),), NOW, {"db": 3600.0}))
        series = age_series(store, NOW - timedelta(days=7), NOW)["db"]
        assert [age for _, age in series.points] == [1048.0, 1024.0, 5.0]
        assert series.max_age_seconds == 3600.0
        # Once filled, later recordings add only their own run.
        record_source_runs(store, source_runs((
            Result("snapshots", "db/a", Status.OK, "fresh",
                   data={"source": "db", "age_seconds": 6.0}),), NOW + timedelta(hours=1)))
        later = age_series(store, NOW - timedelta(days=7), NOW + timedelta(hours=1))["db"]
        assert len(later.points) == 4
    finally:
        store.close()

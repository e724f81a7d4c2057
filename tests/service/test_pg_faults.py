"""`durability run` on a PostgreSQL that restarts, cuts connections or turns read-only.

Each test runs one real service (RAID every second, a 3 s lease) on its own database of a
private cluster of this module (restarting it must not disturb other tests), provokes
the fault, and checks that the service comes back by itself, that every run it logged
as recorded is in the history, and that the fault is said once, not at every attempt.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from durability.state.store import open_store
from tests.service.test_run_process import Running
from tests.service.test_standby import instance, wait_count
from tests.support import postgres as postgres_support
from tests.support.postgres import Cluster

pytestmark = pytest.mark.state


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if not postgres_support.available():
        pytest.skip("PostgreSQL 15 server binaries are not installed")
    with postgres_support.running_cluster() as running:
        yield running


@pytest.fixture
def service(tmp_path: Path, cluster: Cluster) -> Iterator[tuple[Running, str]]:
    url = cluster.create_database()
    config = instance(tmp_path, "alpha", url)
    child = Running(config, tmp_path / "alpha.log")
    try:
        child.wait_for("raid: OK")
        yield child, url
    finally:
        child.close()
        cluster.drop_database(url)


def sql(cluster: Cluster, statement: str) -> None:
    import psycopg

    with psycopg.connect(cluster.url(), autocommit=True) as connection:
        connection.execute(statement)


def terminate(cluster: Cluster, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    sql(cluster, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")


def recorded_runs(url: str) -> list[str]:
    store = open_store(url=url)
    try:
        return [row[0] for row in store.query(
            "SELECT checked_at FROM results WHERE check_name = 'raid' AND status = 'OK' "
            "ORDER BY id")]
    finally:
        store.close()


def settle(child: Running, after: int, runs: int = 3) -> None:
    """Wait until the service logged `runs` more RAID runs than `after`."""
    wait_count(child, "raid: OK", after + runs, timeout=60)
    time.sleep(0.5)


def assert_nothing_lost(child: Running, before: list[str], url: str) -> None:
    after = recorded_runs(url)
    assert before == after[:len(before)], "a recorded run vanished"
    # Every run logged without "history not recorded" is in the history, once.
    log = child.stderr()
    logged = log.count("raid: OK")
    refused = log.count("raid: history not recorded")
    assert len(after) == logged - refused, log


def test_server_restart_mid_run_reconnects_loses_nothing(
    service: tuple[Running, str], cluster: Cluster,
) -> None:
    child, url = service
    wait_count(child, "raid: OK", 3)
    before = recorded_runs(url)
    seen = child.stderr().count("raid: OK")
    postgres_support.restart(cluster)
    settle(child, seen)
    assert_nothing_lost(child, before, url)
    log = child.stderr()
    assert log.count("retrying with backoff") <= 1, log


def test_connections_killed_reconnects_loses_nothing(
    service: tuple[Running, str], cluster: Cluster,
) -> None:
    child, url = service
    wait_count(child, "raid: OK", 2)
    before = recorded_runs(url)
    for _ in range(3):
        seen = child.stderr().count("raid: OK")
        terminate(cluster, url)
        settle(child, seen, runs=2)
    assert_nothing_lost(child, before, url)
    assert "lost the service lease" not in child.stderr()


def test_database_read_only_stops_jobs_said_once_then_resumes(
    service: tuple[Running, str], cluster: Cluster,
) -> None:
    child, url = service
    name = url.rsplit("/", 1)[1]
    wait_count(child, "raid: OK", 2)
    before = recorded_runs(url)
    sql(cluster, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    terminate(cluster, url)
    child.wait_for("not the active instance", timeout=60)
    read_only_log = child.stderr()
    time.sleep(4)  # several lease attempts fail meanwhile; none is logged again
    log = child.stderr()
    assert log.count("read-only transaction") >= 1
    assert log.count("retrying with backoff") == 1, log
    stopped = log.count("raid: OK")
    assert stopped == read_only_log.count("raid: OK")  # no job ran while read-only
    sql(cluster, f'ALTER DATABASE "{name}" SET default_transaction_read_only = off')
    terminate(cluster, url)
    child.wait_for("service lease: the state store answers again", timeout=60)
    settle(child, stopped)
    assert recorded_runs(url)[:len(before)] == before
    assert len(recorded_runs(url)) > len(before)

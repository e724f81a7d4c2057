"""Benchmark: recording results in the state store, on SQLite and on PostgreSQL.

Records RESULTS results (default 1,000,000) as reports of 20 results each through
`Store.record_report` (one transaction per report, as the service does), and, as the
baseline in the same run, the same rows through one bare `executemany` per report into an
unindexed table. Prints results per second and the ratio store / baseline (1.0 would be
"costs nothing beyond the raw insert").

    .venv/bin/python benchmarks/service_record.py [--results N] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from durability.model import Report, Result, Status
from durability.state.store import Store, open_sqlite, open_store

PER_REPORT = 20
START = datetime(2026, 1, 1, tzinfo=UTC)


def reports(count: int) -> Iterator[Report]:
    """Yield `count` reports of PER_REPORT results, five minutes apart."""
    for index in range(count):
        when = START + timedelta(minutes=5 * index)
        yield Report("raid", when, tuple(
            Result("raid", f"node{index % 1000}/md{k}", Status.OK, "clean, 2 of 2 in sync",
                   data={"level": "raid1", "in_sync": 2, "degraded": 0})
            for k in range(PER_REPORT)
        ))


def baseline(store: Store, count: int) -> float:
    """Insert the same rows with a bare executemany per report; return seconds."""
    with store.transaction():
        store.execute("CREATE TABLE bench_raw (run_id TEXT, check_name TEXT, target TEXT,"
                      " status TEXT, summary TEXT, checked_at TEXT, data TEXT)")
    began = time.perf_counter()
    for index, report in enumerate(reports(count)):
        when = report.checked_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        rows = [(str(index), r.check, r.target, r.status.name, r.summary, when,
                 json.dumps(r.data, sort_keys=True)) for r in report.results]
        with store.transaction():
            store.executemany("INSERT INTO bench_raw VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return time.perf_counter() - began


def recorded(store: Store, count: int) -> float:
    """Record through Store.record_report; return seconds."""
    store.record_report(next(reports(1)))  # migrations outside the timing
    began = time.perf_counter()
    for report in reports(count):
        store.record_report(report)
    return time.perf_counter() - began


@contextmanager
def sqlite_store() -> Iterator[Callable[[], Store]]:
    with tempfile.TemporaryDirectory() as folder:
        yield lambda: open_sqlite(f"{folder}/state.db")


@contextmanager
def postgres_store() -> Iterator[Callable[[], Store]]:
    from tests.support.postgres import running_cluster

    with running_cluster() as cluster:
        url = cluster.create_database()
        yield lambda: open_store(url=url)


def run(backend: str, results: int) -> None:
    count = max(1, results // PER_REPORT)
    opener = sqlite_store if backend == "sqlite" else postgres_store
    with opener() as open_one:
        store = open_one()
        try:
            base = baseline(store, count)
            mine = recorded(store, count)
        finally:
            store.close()
    total = count * PER_REPORT
    print(f"{backend}: record {total} results in {count} reports: {mine:.1f}s "
          f"({total / mine:,.0f} results/s); baseline bare insert {base:.1f}s "
          f"({total / base:,.0f} results/s); ratio record/baseline {mine / base:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    for backend in ("sqlite", "postgresql") if args.backend == "both" else (args.backend,):
        run(backend, args.results)


if __name__ == "__main__":
    main()

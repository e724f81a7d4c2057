"""Benchmark: planning reminders for many customers, against a bare loop over the rows.

Run: .venv/bin/python benchmarks/remind_plan.py [CUSTOMERS]   (default 100000)
Prints seconds for (a) a bare loop reading every customer row from the state store and
(b) what `durability remind` does before sending: load the customers who may be due
with their outbox, and plan; and the ratio b/a. 80% of the customers have a copy on
record, spread over the last 90 days; 73% are due.
Target: planning 100,000 customers in under 2 s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from durability.config import parse_config
from durability.remind import state
from durability.remind.records import CustomerRow
from durability.remind.send import plan_now
from durability.state.store import open_sqlite


def main() -> None:
    """Build a store of N customers, time the bare loop and the planner, print ratios."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as folder:
        store = open_sqlite(str(Path(folder) / "state.db"))
        rows = [
            CustomerRow(f"c-{i}", f"user{i}@example.com", f"User {i}", "pl" if i % 3 else "en",
                        None, now - timedelta(days=i % 90) if i % 5 else None)
            for i in range(count)
        ]
        started = time.perf_counter()
        state.import_customers(store, rows, now - timedelta(days=100))
        import_seconds = time.perf_counter() - started

        started = time.perf_counter()
        seen = 0
        for row in store.query("SELECT id, email, name, language, interval_days, "
                               "last_copy_at, created_at FROM remind_customers"):
            seen += 1 if row[5] is None or row[5] < "2026-10-26" else 0
        bare = time.perf_counter() - started

        started = time.perf_counter()
        plan = plan_now(store, parse_config(""), now)
        planning = time.perf_counter() - started
        store.close()
    print(f"customers: {count}  (import: {import_seconds:.2f} s)")
    print(f"bare loop over rows:        {bare:.3f} s")
    print(f"load + plan:                {planning:.3f} s  ({len(plan.due)} due)")
    print(f"ratio plan / bare loop:     {planning / bare:.2f}")
    print(f"target under 2 s:           {'met' if planning < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()

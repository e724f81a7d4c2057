"""The sets each source had in earlier runs, so that a set that vanishes is noticed.

Every run also lands in the generic results history (`Store.record_report`); this
table only remembers which sets existed, per source, and when they were last seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from durability.model import isoformat_z
from durability.state.store import Store

COMPONENT = "snapshots"
MIGRATIONS = (
    """
    CREATE TABLE snapshot_sets (
        source TEXT NOT NULL,
        set_name TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        PRIMARY KEY (source, set_name)
    );
    """,
)
# A vanished set is reported for this long after it was last seen, then forgotten.
FORGET_AFTER = timedelta(days=14)


def known_sets(store: Store, source: str, now: datetime) -> set[str]:
    """Return the sets of `source` seen in earlier runs within FORGET_AFTER of now."""
    store.migrate(COMPONENT, MIGRATIONS)
    since = isoformat_z(now - FORGET_AFTER)
    rows = store.query(
        "SELECT set_name FROM snapshot_sets WHERE source = ? AND last_seen >= ?",
        (source, since),
    )
    return {str(row[0]) for row in rows}


def remember_sets(store: Store, source: str, sets: Iterable[str], now: datetime) -> None:
    """Record that `source` has `sets` now (one transaction)."""
    store.migrate(COMPONENT, MIGRATIONS)
    when = isoformat_z(now)
    rows = [(source, name, when, when) for name in sets]
    with store.transaction():
        store.executemany(
            "INSERT INTO snapshot_sets (source, set_name, first_seen, last_seen)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (source, set_name)"
            " DO UPDATE SET last_seen = excluded.last_seen",
            rows,
        )


def forget(store: Store, target: str) -> int:
    """Forget a source (`SOURCE`) or one set (`SOURCE/SET`); return how many sets were dropped."""
    store.migrate(COMPONENT, MIGRATIONS)
    source, _, set_name = target.partition("/")
    with store.transaction():
        if set_name:
            cursor = store.execute(
                "DELETE FROM snapshot_sets WHERE source = ? AND set_name = ?", (source, set_name)
            )
        else:
            cursor = store.execute("DELETE FROM snapshot_sets WHERE source = ?", (source,))
        return int(cursor.rowcount or 0)

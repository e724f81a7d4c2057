"""RAID history in the state store: inventory, progress tracking, scrubs, acks, events.

One row per array keeps what a single snapshot cannot show: when a rebuild last made
progress, when a scrub last completed, which disks and spares the array had when it
was inventoried, and which error counts an operator acknowledged.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from durability.model import Status, isoformat_z, worst
from durability.raid.evaluate import ArrayHistory, hot_spares, progress_key
from durability.raid.facts import ArrayFacts
from durability.state.store import Store

COMPONENT = "raid"
MIGRATIONS = (
    """
    CREATE TABLE raid_arrays (
        name TEXT PRIMARY KEY,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        present INTEGER NOT NULL,
        progress_key TEXT,
        progress_changed_at TEXT,
        last_action TEXT,
        last_scrub_at TEXT,
        inventory_spares INTEGER,
        inventory_serials TEXT NOT NULL,
        acked_errors TEXT NOT NULL,
        acked_mismatch INTEGER
    );
    CREATE TABLE raid_observations (
        id {id},
        name TEXT NOT NULL,
        observed_at TEXT NOT NULL,
        status TEXT NOT NULL,
        array_state TEXT,
        degraded INTEGER,
        in_sync INTEGER,
        sync_action TEXT,
        sync_progress REAL,
        mismatch_cnt INTEGER
    );
    CREATE INDEX raid_observations_name_time ON raid_observations (name, observed_at);
    CREATE TABLE raid_events (
        id {id},
        at TEXT NOT NULL,
        event TEXT NOT NULL,
        device TEXT NOT NULL,
        component TEXT
    );
    """,
)

_COLUMNS = (
    "name, first_seen, last_seen, present, progress_key, progress_changed_at, last_action,"
    " last_scrub_at, inventory_spares, inventory_serials, acked_errors, acked_mismatch"
)


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def load_history(store: Store) -> dict[str, tuple[ArrayHistory, bool]]:
    """Return every recorded array: its history and whether it was present last time."""
    store.migrate(COMPONENT, MIGRATIONS)
    rows = store.query(f"SELECT {_COLUMNS} FROM raid_arrays")
    result = {}
    for row in rows:
        first_seen = _when(row[1])
        assert first_seen is not None
        result[row[0]] = (
            ArrayHistory(
                first_seen=first_seen,
                progress_key=row[4],
                progress_changed_at=_when(row[5]),
                last_scrub_at=_when(row[7]),
                inventory_spares=row[8],
                inventory_serials=tuple(json.loads(row[9])),
                acked_errors={str(k): int(v) for k, v in json.loads(row[10]).items()},
                acked_mismatch=row[11],
            ),
            bool(row[3]),
        )
    return result


def _serials(facts: ArrayFacts) -> list[str]:
    return sorted({m.identity.serial for m in facts.members if m.identity and m.identity.serial})


def record_observations(
    store: Store,
    arrays: Sequence[ArrayFacts],
    statuses: dict[str, str],
    now: datetime,
    retention_seconds: float,
) -> None:
    """Record one run: update each array's row and append an observation, atomically.

    Arrays recorded earlier but absent now are marked not present (they stay in the
    inventory, so their absence keeps being reported until acknowledged).
    """
    store.migrate(COMPONENT, MIGRATIONS)
    stamp = isoformat_z(now)
    with store.transaction():
        existing = {
            row[0]: row
            for row in store.query(
                "SELECT name, progress_key, last_action, last_scrub_at FROM raid_arrays"
            )
        }
        for facts in arrays:
            key = progress_key(facts)
            row = existing.get(facts.name)
            if row is None:
                store.execute(
                    f"INSERT INTO raid_arrays ({_COLUMNS})"
                    " VALUES (?, ?, ?, 1, ?, ?, ?, NULL, ?, ?, ?, NULL)",
                    (
                        facts.name,
                        stamp,
                        stamp,
                        key,
                        stamp,
                        facts.sync_action,
                        len(hot_spares(facts)),
                        json.dumps(_serials(facts)),
                        "{}",
                    ),
                )
            else:
                changed = row[1] != key
                scrub_done = (
                    row[2] in ("check", "repair")
                    and facts.sync_action == "idle"
                    and facts.last_sync_action in ("check", "repair")
                )
                store.execute(
                    "UPDATE raid_arrays SET last_seen = ?, present = 1, progress_key = ?,"
                    " progress_changed_at = CASE WHEN ? = 1 THEN ? ELSE progress_changed_at END,"
                    " last_action = ?,"
                    " last_scrub_at = CASE WHEN ? = 1 THEN ? ELSE last_scrub_at END"
                    " WHERE name = ?",
                    (
                        stamp,
                        key,
                        int(changed),
                        stamp,
                        facts.sync_action,
                        int(scrub_done),
                        stamp,
                        facts.name,
                    ),
                )
            progress = facts.sync_progress
            store.execute(
                "INSERT INTO raid_observations (name, observed_at, status, array_state, degraded,"
                " in_sync, sync_action, sync_progress, mismatch_cnt)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    facts.name,
                    stamp,
                    statuses.get(facts.name, "UNKNOWN"),
                    facts.array_state,
                    facts.degraded,
                    facts.in_sync,
                    facts.sync_action,
                    progress,
                    facts.mismatch_cnt,
                ),
            )
        present = {facts.name for facts in arrays}
        for name in existing:
            if name not in present:
                store.execute("UPDATE raid_arrays SET present = 0 WHERE name = ?", (name,))
        cutoff = isoformat_z(
            datetime.fromtimestamp(now.timestamp() - retention_seconds, now.tzinfo)
        )
        store.execute("DELETE FROM raid_observations WHERE observed_at < ?", (cutoff,))


def acknowledge(store: Store, facts: ArrayFacts | None, name: str, now: datetime) -> str:
    """Record the array's current error counts, mismatch count, spares and disks as known.

    For an array that is gone (`facts` None) the inventory entry is removed. Return a
    sentence saying what was recorded.
    """
    store.migrate(COMPONENT, MIGRATIONS)
    stamp = isoformat_z(now)
    with store.transaction():
        if facts is None:
            store.execute("DELETE FROM raid_arrays WHERE name = ?", (name,))
            return f"{name}: removed from the inventory"
        errors = {m.device: m.errors or 0 for m in facts.members}
        row = store.query_one("SELECT name FROM raid_arrays WHERE name = ?", (name,))
        values = (
            len(hot_spares(facts)),
            json.dumps(_serials(facts)),
            json.dumps(errors),
            facts.mismatch_cnt or 0,
        )
        if row is None:
            store.execute(
                f"INSERT INTO raid_arrays ({_COLUMNS})"
                " VALUES (?, ?, ?, 1, NULL, NULL, ?, NULL, ?, ?, ?, ?)",
                (name, stamp, stamp, facts.sync_action, *values),
            )
        else:
            store.execute(
                "UPDATE raid_arrays SET inventory_spares = ?, inventory_serials = ?,"
                " acked_errors = ?, acked_mismatch = ? WHERE name = ?",
                (*values, name),
            )
    spares, serials, _, mismatch = values
    return (
        f"{name}: acknowledged member errors {errors}, mismatch_cnt {mismatch}, "
        f"{spares} hot spare(s), {len(json.loads(serials))} known disk serial(s)"
    )


def record_event(
    store: Store, event: str, device: str, component: str | None, now: datetime
) -> None:
    """Record one mdadm --monitor event; a finished scrub also stamps the scrub time."""
    store.migrate(COMPONENT, MIGRATIONS)
    stamp = isoformat_z(now)
    name = device.rsplit("/", 1)[-1]
    with store.transaction():
        store.execute(
            "INSERT INTO raid_events (at, event, device, component) VALUES (?, ?, ?, ?)",
            (stamp, event, device, component),
        )
        if event == "RebuildFinished":
            store.execute(
                "UPDATE raid_arrays SET last_scrub_at = ? WHERE name = ?"
                " AND last_action IN ('check', 'repair')",
                (stamp, name),
            )


def recent_events(store: Store, limit: int = 20) -> list[tuple[str, str, str, str | None]]:
    """Return the latest mdadm events, newest first."""
    store.migrate(COMPONENT, MIGRATIONS)
    rows = store.query(
        "SELECT at, event, device, component FROM raid_events ORDER BY id DESC LIMIT ?", (limit,)
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


# -- this node's RAID for the status page (reads only) -------------------------------------

@dataclass(frozen=True)
class ArrayVerdict:
    """One array's verdict in the latest recorded RAID check of this node."""

    target: str
    status: Status
    summary: str
    checked_at: datetime


def latest_verdicts(store: Store) -> list[ArrayVerdict]:
    """Return the results of this node's latest recorded RAID check ([] before any)."""
    if not store.has_history():
        return []
    rows = store.history(check="raid", limit=500)
    if not rows:
        return []
    newest = rows[0]["checked_at"]
    found = []
    for row in rows:
        if row["checked_at"] != newest:
            break
        moment = _when(str(row["checked_at"]))
        assert moment is not None
        found.append(ArrayVerdict(str(row["target"]),
                                  Status.__members__.get(str(row["status"]), Status.UNKNOWN),
                                  str(row["summary"]), moment.astimezone(UTC)))
    return sorted(found, key=lambda verdict: verdict.target)


def daily_worst(store: Store, since: datetime) -> list[tuple[str, Status]]:
    """Return this node's worst RAID status per UTC day since `since`, oldest first."""
    if not store.is_current(COMPONENT, MIGRATIONS):
        return []
    days: dict[str, Status] = {}
    for day, status, _ in store.query(
        "SELECT substr(observed_at, 1, 10), status, COUNT(*) FROM raid_observations"
        " WHERE observed_at >= ? GROUP BY substr(observed_at, 1, 10), status",
        (isoformat_z(since),),
    ):
        days[day] = worst((days.get(day, Status.OK),
                           Status.__members__.get(status, Status.UNKNOWN)))
    return sorted(days.items())

"""The sets each source had in earlier runs, and each source's age over time.

Every run also lands in the generic results history (`Store.record_report`);
`snapshot_sets` remembers which sets existed, per source, and when they were last seen
(so that a set that vanishes is noticed); `snapshot_ages` keeps one row per source and
run (its verdict, the age of its oldest set's newest snapshot, and the max_age it was
held to) for the status page's chart.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from durability.model import Result, Status, isoformat_z, worst
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
    """
    CREATE TABLE restic_repositories (
        source TEXT NOT NULL PRIMARY KEY,
        repository_id TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        other_id TEXT,
        other_seen TEXT
    );
    CREATE TABLE restic_snapshot_sets (
        source TEXT NOT NULL,
        snapshot_id TEXT NOT NULL,
        set_name TEXT NOT NULL,
        PRIMARY KEY (source, snapshot_id)
    );
    CREATE TABLE restic_checks (
        source TEXT NOT NULL PRIMARY KEY,
        checked_at TEXT NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL,
        clean_at TEXT
    );
    """,
    """
    CREATE TABLE snapshot_ages (
        source TEXT NOT NULL,
        checked_at TEXT NOT NULL,
        checked_epoch REAL NOT NULL,
        status TEXT NOT NULL,
        age_seconds REAL,
        max_age_seconds REAL,
        PRIMARY KEY (source, checked_at)
    );
    CREATE INDEX snapshot_ages_time ON snapshot_ages (checked_epoch);
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


# --- restic repositories: identity, which set each snapshot was in, `restic check`. ---


def recorded_identity(store: Store, source: str) -> str | None:
    """Return the repository id recorded for `source`, or None if none is yet (reads only)."""
    store.migrate(COMPONENT, MIGRATIONS)
    row = store.query_one(
        "SELECT repository_id FROM restic_repositories WHERE source = ?", (source,)
    )
    return None if row is None else str(row[0])


def check_identity(store: Store, source: str, repository_id: str, now: datetime) -> str | None:
    """Compare a repository's id with the one recorded for `source`; record it if new.

    Return None when it is the recorded one (or the first seen), else the CRITICAL
    reason "repository replaced" (the recorded id stays until `acknowledge`).
    """
    store.migrate(COMPONENT, MIGRATIONS)
    when = isoformat_z(now)
    with store.transaction():
        row = store.query_one(
            "SELECT repository_id, first_seen FROM restic_repositories WHERE source = ?",
            (source,),
        )
        if row is None:
            store.execute(
                "INSERT INTO restic_repositories (source, repository_id, first_seen, last_seen)"
                " VALUES (?, ?, ?, ?)",
                (source, repository_id, when, when),
            )
            return None
        recorded, first_seen = str(row[0]), str(row[1])
        if recorded == repository_id:
            store.execute(
                "UPDATE restic_repositories SET last_seen = ?, other_id = NULL,"
                " other_seen = NULL WHERE source = ?",
                (when, source),
            )
            return None
        store.execute(
            "UPDATE restic_repositories SET other_id = ?, other_seen = ? WHERE source = ?",
            (repository_id, when, source),
        )
    return (
        f"repository replaced: its id is now {repository_id[:8]}, recorded "
        f"{recorded[:8]} since {first_seen}; if this is intended, run "
        f"`durability snapshots ack {source}`"
    )


def acknowledge(store: Store, source: str, repository_id: str, now: datetime) -> str | None:
    """Record `repository_id` as the repository of `source`; return the id it replaces."""
    store.migrate(COMPONENT, MIGRATIONS)
    when = isoformat_z(now)
    with store.transaction():
        row = store.query_one(
            "SELECT repository_id FROM restic_repositories WHERE source = ?", (source,)
        )
        store.execute("DELETE FROM restic_repositories WHERE source = ?", (source,))
        store.execute(
            "INSERT INTO restic_repositories (source, repository_id, first_seen, last_seen)"
            " VALUES (?, ?, ?, ?)",
            (source, repository_id, when, when),
        )
        if row is not None and str(row[0]) != repository_id:
            # The old repository's snapshots and check say nothing about the new one.
            store.execute("DELETE FROM restic_snapshot_sets WHERE source = ?", (source,))
            store.execute("DELETE FROM restic_checks WHERE source = ?", (source,))
    return str(row[0]) if row is not None else None


def place_snapshots(store: Store, source: str, ids: Iterable[str]) -> dict[str, str]:
    """Given snapshot ids (full or short), return the set each was seen in, where known."""
    store.migrate(COMPONENT, MIGRATIONS)
    rows = store.query(
        "SELECT snapshot_id, set_name FROM restic_snapshot_sets WHERE source = ?", (source,)
    )
    placed: dict[str, str] = {}
    for ident in ids:
        for snapshot_id, set_name in rows:
            if str(snapshot_id).startswith(ident):
                placed[ident] = str(set_name)
                break
    return placed


def remember_snapshots(store: Store, source: str, sets: Mapping[str, Iterable[str]]) -> None:
    """Record which set each snapshot id belongs to (kept for as long as it exists)."""
    store.migrate(COMPONENT, MIGRATIONS)
    rows = [(source, ident, name) for name, ids in sets.items() for ident in ids]
    with store.transaction():
        store.executemany(
            "INSERT INTO restic_snapshot_sets (source, snapshot_id, set_name) VALUES (?, ?, ?)"
            " ON CONFLICT (source, snapshot_id) DO NOTHING",
            rows,
        )


@dataclass(frozen=True)
class CheckRecord:
    """The last `restic check` of a source: when, "clean" or "damaged", and why."""

    checked_at: str
    outcome: str
    reason: str
    clean_at: str | None


def last_check(store: Store, source: str) -> CheckRecord | None:
    """Return the last recorded `restic check` of `source`, if any."""
    store.migrate(COMPONENT, MIGRATIONS)
    row = store.query_one(
        "SELECT checked_at, outcome, reason, clean_at FROM restic_checks WHERE source = ?",
        (source,),
    )
    if row is None:
        return None
    return CheckRecord(str(row[0]), str(row[1]), str(row[2]), row[3] and str(row[3]))


def record_check(store: Store, source: str, now: datetime, outcome: str, reason: str) -> None:
    """Record the outcome of a `restic check` just run ("clean" or "damaged")."""
    store.migrate(COMPONENT, MIGRATIONS)
    when = isoformat_z(now)
    clean = when if outcome == "clean" else None
    with store.transaction():
        store.execute(
            "INSERT INTO restic_checks (source, checked_at, outcome, reason, clean_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET"
            " checked_at = excluded.checked_at, outcome = excluded.outcome,"
            " reason = excluded.reason,"
            " clean_at = COALESCE(excluded.clean_at, restic_checks.clean_at)",
            (source, when, outcome, reason, clean),
        )


# -- each source over time (the status page) ----------------------------------------------

@dataclass(frozen=True)
class SourceRun:
    """One source in one snapshot run: its verdict and how old its newest backup was."""

    source: str
    checked_at: datetime
    status: Status
    age_seconds: float | None
    max_age_seconds: float | None


def _source_of(result: Result) -> str:
    source = result.data.get("source")
    return str(source) if source else result.target.split("/", 1)[0]


def source_runs(results: Sequence[Result], now: datetime,
                max_ages: dict[str, float] | None = None) -> list[SourceRun]:
    """Given one run's results, return one SourceRun per source (pure).

    A source's age is its oldest set's (the set that matters most); its status the
    worst of its sets.
    """
    by_source: dict[str, list[Result]] = {}
    for result in results:
        by_source.setdefault(_source_of(result), []).append(result)
    runs = []
    for source, items in sorted(by_source.items()):
        ages = [float(r.data["age_seconds"]) for r in items
                if isinstance(r.data.get("age_seconds"), int | float)]
        runs.append(SourceRun(source, now, worst(r.status for r in items),
                              max(ages) if ages else None, (max_ages or {}).get(source)))
    return runs


# How far back the first recording fills the ages from the results history.
BACKFILL_DAYS = 400


def _from_history(store: Store, now: datetime) -> list[SourceRun]:
    # Runs recorded before this table existed, from the results history (once).
    if not store.has_history():
        return []
    by_run: dict[str, list[Result]] = {}
    for row in store.history(check="snapshots", since=now - timedelta(days=BACKFILL_DAYS),
                             limit=2_000_000):
        data = row["data"] if isinstance(row["data"], dict) else {}
        by_run.setdefault(str(row["checked_at"]), []).append(Result(
            "snapshots", str(row["target"]),
            Status.__members__.get(str(row["status"]), Status.UNKNOWN),
            str(row["summary"]), data=data))
    runs = []
    for checked, results in by_run.items():
        runs.extend(source_runs(results, _time(checked)))
    return runs


def record_source_runs(store: Store, runs: Sequence[SourceRun]) -> None:
    """Record each source's verdict and age of one run (one transaction).

    The first recording on a store also fills in the runs already in the results
    history, so the status page's chart does not start empty after an upgrade.
    """
    store.migrate(COMPONENT, MIGRATIONS)
    if runs and store.query_one("SELECT 1 FROM snapshot_ages LIMIT 1") is None:
        runs = [*_from_history(store, runs[0].checked_at), *runs]
    with store.transaction():
        store.executemany(
            "INSERT INTO snapshot_ages (source, checked_at, checked_epoch, status, age_seconds,"
            " max_age_seconds) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source, checked_at)"
            " DO UPDATE SET status = excluded.status, age_seconds = excluded.age_seconds,"
            " max_age_seconds = excluded.max_age_seconds",
            [(r.source, isoformat_z(r.checked_at), r.checked_at.timestamp(), r.status.name,
              r.age_seconds, r.max_age_seconds) for r in runs],
        )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class AgeSeries:
    """One source's age over time: (time, age in seconds) points, oldest first."""

    source: str
    points: tuple[tuple[datetime, float], ...]
    max_age_seconds: float | None


def age_series(store: Store, since: datetime, until: datetime | None = None,
               buckets: int = 160) -> dict[str, AgeSeries]:
    """Return each source's ages since `since` (reads only; {} before any run).

    The window is cut into `buckets` equal spans; each span keeps its greatest age (at
    its first run's time), so a spike stays visible and a month of runs stays small.
    `max_age_seconds` is the limit of the source's latest run in the window.
    """
    if not store.is_current(COMPONENT, MIGRATIONS):
        return {}
    start = since.timestamp()
    width = max(((until.timestamp() if until else time.time()) - start) / buckets, 1.0)
    points: dict[str, list[tuple[datetime, float]]] = {}
    for source, first, age in store.query(
        "SELECT source, MIN(checked_epoch), MAX(age_seconds) FROM snapshot_ages"
        " WHERE checked_epoch >= ? AND age_seconds IS NOT NULL"
        " GROUP BY source, CAST((checked_epoch - ?) / ? AS INTEGER)"
        " ORDER BY source, MIN(checked_epoch)", (start, start, width),
    ):
        points.setdefault(source, []).append(
            (datetime.fromtimestamp(float(first), UTC), float(age)))
    limits = dict(store.query(
        "SELECT a.source, a.max_age_seconds FROM snapshot_ages a JOIN (SELECT source,"
        " MAX(checked_epoch) AS newest FROM snapshot_ages WHERE checked_epoch >= ?"
        " GROUP BY source) n ON a.source = n.source AND a.checked_epoch = n.newest",
        (start,)))
    return {source: AgeSeries(source, tuple(series),
                              None if limits.get(source) is None else float(limits[source]))
            for source, series in points.items()}


def latest(store: Store) -> dict[str, SourceRun]:
    """Return each source's most recent run (reads only; {} before any run)."""
    if not store.is_current(COMPONENT, MIGRATIONS):
        return {}
    rows = store.query(
        "SELECT a.source, a.checked_at, a.status, a.age_seconds, a.max_age_seconds"
        " FROM snapshot_ages a JOIN (SELECT source, MAX(checked_at) AS newest"
        " FROM snapshot_ages GROUP BY source) n"
        " ON a.source = n.source AND a.checked_at = n.newest ORDER BY a.source")
    return {source: SourceRun(source, _time(checked),
                              Status.__members__.get(status, Status.UNKNOWN),
                              None if age is None else float(age),
                              None if max_age is None else float(max_age))
            for source, checked, status, age, max_age in rows}

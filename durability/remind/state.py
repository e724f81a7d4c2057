"""The reminder tables in the state store: customers, events, the outbox and a run lock.

The outbox is the ledger that makes sending at-most-once: a message is claimed (its
row written as `claimed`) in a committed transaction before anything is sent, marked
`handing` (committed) just before its body goes to the server, and the server's answer
is recorded afterwards. At the start of a later run, a `claimed` row belongs to a
process that died before handing it over (it becomes `failed` and is sent again); a
`handing` row to one that died with the outcome unknown (it becomes `uncertain` and is
never resent automatically).
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from durability.errors import StateError
from durability.model import isoformat_z
from durability.remind.records import (
    CLAIMED,
    DELIVERED_STATES,
    FAILED,
    HANDING,
    REFUSED,
    UNCERTAIN,
    CustomerRow,
    CustomerState,
    OutboxEntry,
    parse_time,
)
from durability.state.store import Store

MIGRATIONS = (
    """
    CREATE TABLE remind_customers (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL,
        name TEXT NOT NULL,
        language TEXT NOT NULL,
        interval_days INTEGER,
        last_copy_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        snoozed_until TEXT,
        unsubscribed_at TEXT,
        refused_email TEXT,
        refused_at TEXT,
        refused_reason TEXT
    );
    CREATE TABLE remind_events (
        id {id},
        customer_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        at TEXT NOT NULL,
        detail TEXT NOT NULL,
        dedup_key TEXT UNIQUE
    );
    CREATE INDEX remind_events_customer ON remind_events (customer_id, at);
    CREATE TABLE remind_outbox (
        msg_key TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        period_start TEXT NOT NULL,
        step INTEGER NOT NULL,
        message_id TEXT NOT NULL,
        email TEXT NOT NULL,
        state TEXT NOT NULL,
        handed_at TEXT,
        done_at TEXT,
        attempts INTEGER NOT NULL,
        answer TEXT NOT NULL
    );
    CREATE INDEX remind_outbox_customer ON remind_outbox (customer_id, period_start);
    CREATE INDEX remind_outbox_handed ON remind_outbox (handed_at);
    CREATE TABLE remind_lock (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        heartbeat REAL NOT NULL
    );
    """,
)

LOCK_STALE_SECONDS = 600.0

_CUSTOMER_COLUMNS = (
    "id, email, name, language, interval_days, last_copy_at, created_at, snoozed_until, "
    "unsubscribed_at, refused_email"
)


def migrate(store: Store) -> None:
    """Create or update the reminder tables."""
    store.migrate("remind", MIGRATIONS)


def _z(moment: datetime | None) -> str | None:
    return isoformat_z(moment) if moment is not None else None


def import_customers(store: Store, rows: Sequence[CustomerRow], now: datetime) -> tuple[int, int]:
    """Given validated rows, insert new customers and update known ones, all or nothing.

    Names, addresses, languages and intervals are replaced; a `last_copy_at` in the file
    only moves a customer's last copy forward. Reminder history is kept. Return
    (added, updated). Raise StateError if the store cannot be written (nothing changes).
    """
    migrate(store)
    stamp = isoformat_z(now)
    added = updated = 0
    with store.transaction():
        known = {r[0]: r for r in store.query(
            "SELECT id, email, last_copy_at FROM remind_customers")}
        for row in rows:
            copy = _z(row.last_copy_at)
            old = known.get(row.id)
            if old is None:
                store.execute(
                    "INSERT INTO remind_customers (id, email, name, language, interval_days, "
                    "last_copy_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (row.id, row.email, row.name, row.language, row.interval_days, copy,
                     stamp, stamp),
                )
                added += 1
                _event(store, row.id, "import", "import", now, {"email": row.email})
                continue
            old_copy = old[2]
            newest = max((c for c in (copy, old_copy) if c), default=None)
            store.execute(
                "UPDATE remind_customers SET email = ?, name = ?, language = ?, "
                "interval_days = ?, last_copy_at = ?, updated_at = ? WHERE id = ?",
                (row.email, row.name, row.language, row.interval_days, newest, stamp, row.id),
            )
            updated += 1
            if old[1] != row.email:
                _event(store, row.id, "address", "import", now,
                       {"old": old[1], "new": row.email})
    return added, updated


def _event(
    store: Store, customer_id: str, kind: str, source: str, at: datetime,
    detail: dict[str, Any], dedup_key: str | None = None,
) -> None:
    store.execute(
        "INSERT INTO remind_events (customer_id, kind, source, at, detail, dedup_key) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (customer_id, kind, source, isoformat_z(at), json.dumps(detail, sort_keys=True),
         dedup_key),
    )


def _state_from_row(
    row: Sequence[Any], outbox: Iterable[OutboxEntry] = (), copies: int = 0
) -> CustomerState:
    created = parse_time(row[6])
    assert created is not None
    return CustomerState(
        row[0], row[1], row[2], row[3], row[4], parse_time(row[5]), created,
        parse_time(row[7]), parse_time(row[8]), row[9], copies, tuple(outbox),
    )


def _entry(row: Sequence[Any]) -> OutboxEntry:
    period = parse_time(row[1])
    assert period is not None
    return OutboxEntry(key=row[0], period_start=period, step=int(row[2]), state=row[3],
                       handed_at=parse_time(row[4]), email=row[5])


def load_states(
    store: Store, due_by: datetime | None = None, interval_days: int = 30,
) -> list[CustomerState]:
    """Return customers with their outbox entries, for the planner.

    With `due_by` (now) and the default interval, customers who cannot be due (on the
    default interval with a copy newer than that, or unsubscribed) are left out in SQL,
    so that a large customer base costs only what is overdue.
    """
    migrate(store)
    where, params = "", []
    if due_by is not None:
        cutoff = isoformat_z(due_by - timedelta(days=interval_days))
        where = ("WHERE unsubscribed_at IS NULL AND (interval_days IS NOT NULL "
                 "OR last_copy_at IS NULL OR last_copy_at <= ?)")
        params = [cutoff]
    entries: dict[str, list[OutboxEntry]] = {}
    for row in store.query(
        "SELECT msg_key, period_start, step, state, handed_at, email, customer_id "
        "FROM remind_outbox ORDER BY customer_id, period_start, step"
    ):
        entries.setdefault(row[6], []).append(_entry(row))
    copies = dict(store.query(
        "SELECT customer_id, COUNT(*) FROM remind_events WHERE kind = 'confirm' "
        "GROUP BY customer_id"))
    return [
        _state_from_row(row, entries.get(row[0], ()), int(copies.get(row[0], 0)))
        for row in store.query(
            f"SELECT {_CUSTOMER_COLUMNS} FROM remind_customers {where} ORDER BY id", params)
    ]


def load_state(store: Store, customer_id: str) -> CustomerState | None:
    """Return one customer with their outbox entries, or None if unknown."""
    migrate(store)
    row = store.query_one(
        f"SELECT {_CUSTOMER_COLUMNS} FROM remind_customers WHERE id = ?", (customer_id,))
    if row is None:
        return None
    outbox = [_entry(r) for r in store.query(
        "SELECT msg_key, period_start, step, state, handed_at, email FROM remind_outbox "
        "WHERE customer_id = ? ORDER BY period_start, step", (customer_id,))]
    copies = store.query_one(
        "SELECT COUNT(*) FROM remind_events WHERE kind = 'confirm' AND customer_id = ?",
        (customer_id,))
    return _state_from_row(row, outbox, int(copies[0]) if copies else 0)


def customer_events(store: Store, customer_id: str) -> list[dict[str, Any]]:
    """Return a customer's events (imports, confirmations, snoozes...), oldest first."""
    migrate(store)
    return [
        {"kind": r[0], "source": r[1], "at": r[2], "detail": json.loads(r[3])}
        for r in store.query(
            "SELECT kind, source, at, detail FROM remind_events WHERE customer_id = ? "
            "ORDER BY at, id", (customer_id,))
    ]


def customer_messages(store: Store, customer_id: str) -> list[dict[str, Any]]:
    """Return a customer's outbox rows (what was sent, refused, uncertain), oldest first."""
    migrate(store)
    names = ("key", "period_start", "step", "message_id", "email", "state", "handed_at",
             "done_at", "attempts", "answer")
    return [dict(zip(names, r, strict=True)) for r in store.query(
        "SELECT msg_key, period_start, step, message_id, email, state, handed_at, done_at, "
        "attempts, answer FROM remind_outbox WHERE customer_id = ? "
        "ORDER BY period_start, step", (customer_id,))]


def refused_info(store: Store, customer_id: str) -> tuple[str | None, str | None, str | None]:
    """Return (refused address, when, server answer) for a customer."""
    row = store.query_one(
        "SELECT refused_email, refused_at, refused_reason FROM remind_customers WHERE id = ?",
        (customer_id,))
    return (row[0], row[1], row[2]) if row else (None, None, None)


# -- actions from links and the helper ----------------------------------------------------

def record_confirmation(
    store: Store, customer_id: str, copy_at: datetime, source: str, dedup_key: str,
    at: datetime, detail: dict[str, Any] | None = None,
) -> bool:
    """Record that the customer has a fresh external copy (made at `copy_at`).

    This ends the due period. Return False when `dedup_key` was recorded before (a
    replayed link or receipt), changing nothing. Raise KeyError for an unknown customer.
    """
    migrate(store)
    with store.transaction():
        if not _customer_exists(store, customer_id):
            raise KeyError(customer_id)
        if _seen(store, dedup_key):
            return False
        stamp = isoformat_z(copy_at)
        store.execute(
            "UPDATE remind_customers SET last_copy_at = ? WHERE id = ? "
            "AND (last_copy_at IS NULL OR last_copy_at < ?)", (stamp, customer_id, stamp))
        _event(store, customer_id, "confirm", source, at,
               {"copy_at": stamp, **(detail or {})}, dedup_key)
    return True


def record_snooze(
    store: Store, customer_id: str, until: datetime, dedup_key: str, at: datetime,
) -> bool:
    """Record a snooze until `until`; return False for a replay. Raise KeyError if unknown."""
    migrate(store)
    with store.transaction():
        if not _customer_exists(store, customer_id):
            raise KeyError(customer_id)
        if _seen(store, dedup_key):
            return False
        store.execute("UPDATE remind_customers SET snoozed_until = ? WHERE id = ?",
                      (isoformat_z(until), customer_id))
        _event(store, customer_id, "snooze", "link", at, {"until": isoformat_z(until)},
               dedup_key)
    return True


def record_unsubscribe(store: Store, customer_id: str, source: str, at: datetime) -> bool:
    """Stop all reminders to a customer; return False if already unsubscribed."""
    migrate(store)
    with store.transaction():
        row = store.query_one(
            "SELECT unsubscribed_at FROM remind_customers WHERE id = ?", (customer_id,))
        if row is None:
            raise KeyError(customer_id)
        if row[0] is not None:
            return False
        store.execute("UPDATE remind_customers SET unsubscribed_at = ? WHERE id = ?",
                      (isoformat_z(at), customer_id))
        _event(store, customer_id, "unsubscribe", source, at, {})
    return True


def _customer_exists(store: Store, customer_id: str) -> bool:
    return store.query_one(
        "SELECT 1 FROM remind_customers WHERE id = ?", (customer_id,)) is not None


def _seen(store: Store, dedup_key: str) -> bool:
    return store.query_one(
        "SELECT 1 FROM remind_events WHERE dedup_key = ?", (dedup_key,)) is not None


# -- the outbox ---------------------------------------------------------------------------

def claim(
    store: Store, key: str, customer_id: str, period_start: datetime, step: int,
    message_id: str, email: str, now: datetime, planned_from: CustomerState | None = None,
) -> bool:
    """Claim one message before handing it to SMTP; commit; return True if claimed.

    A key never seen is inserted; a key whose earlier attempt failed (never accepted)
    or was refused for another address is claimed again. Anything else (sent,
    uncertain, claimed by another run) returns False and must not be sent. With
    `planned_from`, a customer who confirmed, snoozed, unsubscribed or changed address
    since the plan was made is not claimed either.
    """
    with store.transaction():
        if planned_from is not None and _changed_since(store, planned_from):
            return False
        row = store.query_one(
            "SELECT state, email FROM remind_outbox WHERE msg_key = ?", (key,))
        if row is None:
            store.execute(
                "INSERT INTO remind_outbox (msg_key, customer_id, period_start, step, "
                "message_id, email, state, handed_at, done_at, attempts, answer) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, 1, '')",
                (key, customer_id, isoformat_z(period_start), step, message_id, email,
                 CLAIMED, isoformat_z(now)),
            )
            return True
        state, old_email = row
        if state == FAILED or (state == REFUSED and old_email != email):
            store.execute(
                "UPDATE remind_outbox SET state = ?, email = ?, handed_at = ?, done_at = NULL, "
                "attempts = attempts + 1 WHERE msg_key = ?",
                (CLAIMED, email, isoformat_z(now), key),
            )
            return True
    return False


def _changed_since(store: Store, planned: CustomerState) -> bool:
    row = store.query_one(
        "SELECT email, last_copy_at, snoozed_until, unsubscribed_at FROM remind_customers "
        "WHERE id = ?", (planned.id,))
    if row is None:
        return True
    return (row[0] != planned.email or parse_time(row[1]) != planned.last_copy_at
            or parse_time(row[2]) != planned.snoozed_until or row[3] is not None)


def finish(
    store: Store, key: str, state: str, answer: str, now: datetime,
    customer_id: str | None = None, email: str | None = None,
) -> None:
    """Record the server's answer to a claimed message.

    A permanent refusal (`refused`) also suppresses the customer's address until it
    changes (`customer_id` and `email` are then required).
    """
    with store.transaction():
        store.execute(
            "UPDATE remind_outbox SET state = ?, answer = ?, done_at = ? WHERE msg_key = ?",
            (state, answer[:500], isoformat_z(now), key),
        )
        if state == REFUSED and customer_id is not None:
            store.execute(
                "UPDATE remind_customers SET refused_email = ?, refused_at = ?, "
                "refused_reason = ? WHERE id = ?",
                (email, isoformat_z(now), answer[:500], customer_id),
            )


def release(store: Store, key: str, answer: str, now: datetime) -> None:
    """Record that a claimed message was never handed over (it goes out next run)."""
    finish(store, key, FAILED, answer, now)


def handed_since(store: Store, since: datetime) -> int:
    """Return how many messages were handed to the server at or after `since`."""
    migrate(store)
    row = store.query_one(
        "SELECT COUNT(*) FROM remind_outbox WHERE handed_at >= ? AND state <> ?",
        (isoformat_z(since), FAILED))
    return int(row[0]) if row else 0


def mark_handing(store: Store, key: str) -> None:
    """Record that the message body is about to be handed to the server."""
    with store.transaction():
        store.execute("UPDATE remind_outbox SET state = ? WHERE msg_key = ? AND state = ?",
                      (HANDING, key, CLAIMED))


def mark_abandoned_claims(store: Store, now: datetime) -> int:
    """Settle what a dead run left; return how many messages became `uncertain`.

    `handing` rows become `uncertain` (never resent); `claimed` rows were never handed
    over and become `failed` (sent by this run). Call only while holding the run lock:
    then no live run has a claim open.
    """
    migrate(store)
    with store.transaction():
        row = store.query_one(
            "SELECT COUNT(*) FROM remind_outbox WHERE state = ?", (HANDING,))
        count = int(row[0]) if row else 0
        store.execute(
            "UPDATE remind_outbox SET state = ?, done_at = ?, answer = ? WHERE state = ?",
            (UNCERTAIN, isoformat_z(now),
             "the sending run stopped before the server's answer was recorded", HANDING))
        store.execute(
            "UPDATE remind_outbox SET state = ?, done_at = ?, answer = ? WHERE state = ?",
            (FAILED, isoformat_z(now), "the sending run stopped before handing it over",
             CLAIMED))
    return count


# -- every customer's reminder state, for the status page (reads only) --------------------

# Categories, worst first by default: `attention` (the operator must act: an address the
# mail server refused, every reminder of the period sent without a copy, or a message
# whose delivery is uncertain), `overdue` (reminders are going out), `no-copy` (no own
# copy on record yet), `snoozed`, `unsubscribed` and `ok` (a copy within the interval).
CATEGORIES = ("attention", "overdue", "no-copy", "snoozed", "unsubscribed", "ok")


@dataclass(frozen=True)
class CustomerSummary:
    """One customer's own-copy and reminder state."""

    id: str
    name: str
    email: str
    category: str
    last_copy_at: datetime | None
    due_since: datetime | None
    step: int
    max_steps: int
    snoozed_until: datetime | None
    unsubscribed_at: datetime | None
    refused: bool
    uncertain: int
    reason: str = ""


@dataclass(frozen=True)
class CustomerPage:
    """One page of customers, with counts over every customer."""

    rows: tuple[CustomerSummary, ...]
    counts: dict[str, int]
    total: int
    matched: int
    page: int
    pages: int


_DIGITS = re.compile(r"(\d+)")
_HAS_DIGIT = re.compile(r"\d").search
_DIGIT_CHARS = "0123456789"


def natural_key(text: str) -> str:
    """Return a sort key that orders the numbers in `text` by value (c-999 before c-1000).

    Each text-then-number part becomes the text, a NUL, a character counting the
    number's digits and the digits: numbers of fewer digits come first, equal lengths
    compare digit by digit. A string key sorts far faster than tuples.
    """
    prefix = text.rstrip(_DIGIT_CHARS)
    if _HAS_DIGIT(prefix) is None:  # the usual shape of an id: one trailing number
        number = text[len(prefix):].lstrip("0")
        return f"{prefix.lower()}\0{chr(32 + len(number))}{number}"
    parts = _DIGITS.split(text)
    key = []
    for index in range(0, len(parts), 2):
        number = parts[index + 1].lstrip("0") if index + 1 < len(parts) else ""
        if parts[index] or number or index == 0:
            key.append(f"{parts[index].lower()}\0{chr(32 + len(number))}{number}")
    return "".join(key)


# What a search looks in: the id, name and email of a customer in one text.
SEARCH_TEXT = ", id || ' ' || name || ' ' || email"


def customer_summary(
    store: Store, now: datetime, interval_days: int = 30, max_reminders: int = 6,
    q: str = "", state: str = "", page: int = 1, per_page: int = 200,
    order: Sequence[str] = CATEGORIES,
) -> CustomerPage:
    """Return one page of customers matching `q` (id, name or email) and `state` (a category).

    Rows are sorted by category in `order` (worst first), then by id with numbers
    compared as numbers. Counts cover every customer, whatever the search. Reads only:
    before the first import there are no customers.
    """
    if not store.is_current("remind", MIGRATIONS):
        return CustomerPage((), {name: 0 for name in CATEGORIES}, 0, 0, 1, 1)
    now_text = isoformat_z(now)
    cutoffs: dict[int, str] = {}
    periods: dict[str, tuple[str, int, int]] = {}
    for customer_id, period, delivered, uncertain in store.query(
        "SELECT customer_id, period_start,"
        " SUM(CASE WHEN state IN (?, ?) THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN state = ? THEN 1 ELSE 0 END)"
        " FROM remind_outbox GROUP BY customer_id, period_start",
        (*DELIVERED_STATES, UNCERTAIN),
    ):
        known = periods.get(customer_id)
        if known is None or period > known[0]:
            periods[customer_id] = (period, int(delivered or 0), int(uncertain or 0))
    needle = q.strip().lower()
    rank = {name: index for index, name in enumerate(order)}
    counts = {name: 0 for name in CATEGORIES}
    buckets: list[list[tuple[tuple[Any, ...], str, str, int, int]]] = [
        [] for _ in range(len(rank) + 1)]
    # Names and addresses are read for every customer only when searching.
    rows = store.query(
        "SELECT id, interval_days, last_copy_at, snoozed_until, unsubscribed_at,"
        " CASE WHEN refused_email = email THEN 1 ELSE 0 END"
        f"{SEARCH_TEXT if needle else ''} FROM remind_customers")
    bucket_of = {name: buckets[rank.get(name, len(rank))] for name in CATEGORIES}
    for row in rows:
        customer_id, days, copy, snoozed, unsubscribed, refused = (
            row[0], row[1], row[2], row[3], row[4], row[5])
        days = days or interval_days
        cutoff = cutoffs.get(days)
        if cutoff is None:
            cutoff = cutoffs[days] = isoformat_z(now - timedelta(days=days))
        step = uncertain = 0
        reason = ""
        if unsubscribed:
            category = "unsubscribed"
        elif refused:
            category, reason = "attention", "address refused by the mail server"
        elif copy and copy >= cutoff:
            category = "ok"
        elif snoozed and snoozed > now_text:
            category = "snoozed"
        else:
            period = periods.get(customer_id)
            if period and (not copy or period[0] > copy) and period[0] >= (snoozed or ""):
                step, uncertain = period[1], period[2]
            if step >= max_reminders:
                category = "attention"
                reason = f"{step} reminders sent in this period, no copy confirmed"
            elif uncertain:
                category = "attention"
                reason = (f"{uncertain} reminder(s) may not have arrived"
                          " (a sending run stopped mid-send)")
            else:
                category = "no-copy" if not copy else "overdue"
        counts[category] += 1
        if state and category != state:
            continue
        if needle and needle not in row[6].lower():
            continue
        bucket_of[category].append((row, category, reason, step, uncertain))
    matched = sum(len(bucket) for bucket in buckets)
    pages = max(1, -(-matched // per_page))
    page = min(max(page, 1), pages)
    # Only the categories the page shows are sorted (by id, numbers as numbers).
    start, end, offset = (page - 1) * per_page, page * per_page, 0
    chosen: list[tuple[tuple[Any, ...], str, str, int, int]] = []
    for bucket in buckets:
        if offset < end and offset + len(bucket) > start:
            bucket.sort(key=lambda item: natural_key(item[0][0]))
            chosen.extend(bucket[max(start - offset, 0):end - offset])
        offset += len(bucket)
    names = _names(store, [item[0][0] for item in chosen])
    shown = []
    for row, category, reason, step, uncertain in chosen:
        customer_id, days, copy, snoozed, unsubscribed, refused = row[:6]
        last_copy = parse_time(copy)
        due = None
        if category in ("overdue", "attention", "snoozed") and last_copy is not None:
            due = last_copy + timedelta(days=days or interval_days)
        name, email = names.get(customer_id, ("", ""))
        shown.append(CustomerSummary(
            customer_id, name, email, category, last_copy, due, step, max_reminders,
            parse_time(snoozed), parse_time(unsubscribed), bool(refused), uncertain, reason))
    return CustomerPage(tuple(shown), counts, len(rows), matched, page, pages)


def _names(store: Store, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join("?" for _ in chunk)
        for customer_id, name, email in store.query(
            f"SELECT id, name, email FROM remind_customers WHERE id IN ({marks})", chunk
        ):
            found[customer_id] = (name, email)
    return found


# -- the run lock -------------------------------------------------------------------------

class RunLock:
    """One `durability remind` at a time per store, so a live run's claims are never
    mistaken for a dead one's. A lock whose process is gone (same host) or whose
    heartbeat is older than LOCK_STALE_SECONDS is taken over.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.owner = f"{self.host}:{self.pid}:{time.time():.6f}"
        # A run of the active service names its lease: a lock left by an earlier lease
        # holder belongs to an instance whose every write is now refused (the store's
        # fence), so it is taken over at once rather than after LOCK_STALE_SECONDS.
        self.fence_token = store.fence_token
        if self.fence_token:
            self.owner += f" service {self.fence_token}"

    def acquire(self) -> None:
        """Take the lock. Raise StateError if another live run holds it."""
        migrate(self.store)
        with self.store.transaction():
            row = self.store.query_one(
                "SELECT owner, host, pid, heartbeat FROM remind_lock WHERE name = 'remind'")
            if row is not None and not self._stale(row[1], int(row[2]), float(row[3]),
                                                   str(row[0])):
                raise StateError(
                    f"another `durability remind` is running (pid {row[2]} on {row[1]})")
            self.store.execute("DELETE FROM remind_lock WHERE name = 'remind'")
            self.store.execute(
                "INSERT INTO remind_lock (name, owner, host, pid, heartbeat) "
                "VALUES ('remind', ?, ?, ?, ?)", (self.owner, self.host, self.pid, time.time()))

    def _stale(self, host: str, pid: int, heartbeat: float, owner: str = "") -> bool:
        if time.time() - heartbeat > LOCK_STALE_SECONDS:
            return True
        _, service, token = owner.partition(" service ")
        if self.fence_token and service and token != self.fence_token:
            return True
        if host == self.host:
            if pid == self.pid:
                return True
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
        return False

    def heartbeat(self) -> None:
        """Show that the run is alive."""
        with self.store.transaction():
            self.store.execute("UPDATE remind_lock SET heartbeat = ? WHERE owner = ?",
                               (time.time(), self.owner))

    def release(self) -> None:
        """Give the lock up."""
        with self.store.transaction():
            self.store.execute("DELETE FROM remind_lock WHERE owner = ?", (self.owner,))


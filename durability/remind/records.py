"""Plain records of the reminder feature (no I/O here)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime

# Outbox states. `claimed`: reserved by a run, not yet handed over. `handing`: the
# message body is being handed to the server, no answer recorded yet. `uncertain`: a
# `handing` left by a run that died; the customer may have it, so it is never resent.
# A `claimed` left by a dead run was never handed over and becomes `failed` (resent).
CLAIMED, HANDING = "claimed", "handing"
SENT, FAILED, REFUSED, UNCERTAIN = "sent", "failed", "refused", "uncertain"
# States that count as a reminder the customer (may) have received.
DELIVERED_STATES = (SENT, UNCERTAIN)


@dataclass(frozen=True)
class CustomerRow:
    """One customer as given in an import file."""

    id: str
    email: str
    name: str
    language: str
    interval_days: int | None = None
    last_copy_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One message of the outbox, as the planner needs it."""

    key: str
    period_start: datetime
    step: int
    state: str
    handed_at: datetime | None
    email: str


@dataclass(frozen=True, slots=True)
class CustomerState:
    """A customer and everything the planner needs to decide on them."""

    id: str
    email: str
    name: str
    language: str
    interval_days: int | None
    last_copy_at: datetime | None
    created_at: datetime
    snoozed_until: datetime | None = None
    unsubscribed_at: datetime | None = None
    refused_email: str | None = None
    confirmed_copies: int = 0
    outbox: tuple[OutboxEntry, ...] = ()


def parse_time(text: str | None) -> datetime | None:
    """Given a stored ISO-8601 timestamp (or None), return an aware UTC datetime."""
    if text is None or text == "":
        return None
    return _parse_time(text)


@functools.lru_cache(maxsize=65536)
def _parse_time(text: str) -> datetime:
    # Stored times repeat a lot (one import stamps every row alike): cache them.
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)

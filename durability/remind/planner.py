"""The reminder planner: pure. Customers, outbox history, policy and `now` in; a plan out.

A customer's due period starts when their last confirmed copy is older than their
interval (or at import when no copy is on record, or when a snooze ends). Within a
period the first reminder is due at once, the next ones at gaps after the last one
handed over (default 7, 14, then every 30 days), up to `max_reminders`; then the
customer is listed for the operator instead.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from durability.model import isoformat_z
from durability.remind.records import (
    CLAIMED,
    DELIVERED_STATES,
    FAILED,
    HANDING,
    REFUSED,
    CustomerState,
)


@dataclass(frozen=True)
class Policy:
    """How often to remind."""

    interval_days: int = 30
    max_reminders: int = 6
    gaps_days: tuple[int, ...] = (7, 14, 30)


@dataclass(frozen=True, slots=True)
class Planned:
    """One reminder due now."""

    customer: CustomerState
    period_start: datetime
    step: int
    due_at: datetime
    retry: bool = False

    @property
    def key(self) -> str:
        """Return the message's unique outbox key (computed only for what is sent)."""
        return message_key(self.customer.id, self.period_start, self.step)


@dataclass(frozen=True)
class Attention:
    """A customer the operator should look at (no reminder goes out)."""

    customer_id: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """What is due now (oldest first) and what needs the operator."""

    due: tuple[Planned, ...] = ()
    attention: tuple[Attention, ...] = field(default_factory=tuple)


def message_key(customer_id: str, period_start: datetime, step: int) -> str:
    """Return the unique outbox key of a reminder: (customer, period start, step)."""
    return f"{customer_id}/{isoformat_z(period_start)}/{step}"


@functools.lru_cache(maxsize=1024)
def _days(count: int) -> timedelta:
    return timedelta(days=count)


def message_id(key: str, domain: str) -> str:
    """Return the deterministic Message-ID of the message with this key."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<remind.{digest}@{domain}>"


def period_start(customer: CustomerState, policy: Policy) -> datetime:
    """Return when the customer's current (or next) due period starts."""
    if customer.last_copy_at is None:
        start = customer.created_at
    else:
        start = customer.last_copy_at + _days(customer.interval_days or policy.interval_days)
    if customer.snoozed_until is not None and customer.snoozed_until > start:
        start = customer.snoozed_until
    return start


def gap_after(step: int, policy: Policy) -> timedelta:
    """Return the wait after reminder number `step` (1-based) before the next one."""
    gaps = policy.gaps_days
    return _days(gaps[min(step, len(gaps)) - 1])


def evaluate_customer(
    customer: CustomerState, policy: Policy, now: datetime
) -> Planned | Attention | None:
    """Return the reminder due now for one customer, an Attention, or None."""
    if customer.unsubscribed_at is not None:
        return None
    if customer.refused_email is not None and customer.refused_email == customer.email:
        return Attention(customer.id, f"address {customer.email} refused by the mail server")
    start = period_start(customer, policy)
    if now < start:
        return None
    delivered = 0
    last_handed: datetime | None = None
    retry = in_flight = False
    for entry in customer.outbox:
        if entry.period_start != start:
            continue
        if entry.state in DELIVERED_STATES:
            delivered += 1
            if entry.handed_at is not None and (last_handed is None
                                                or entry.handed_at > last_handed):
                last_handed = entry.handed_at
        elif entry.state in (CLAIMED, HANDING):
            in_flight = True
        elif entry.state in (FAILED, REFUSED):
            retry = True
    if in_flight:
        return None
    step = delivered + 1
    if step > policy.max_reminders:
        return Attention(customer.id, f"{delivered} reminders sent in this period, "
                         "no copy confirmed")
    if step == 1 or last_handed is None:
        due_at = start
    else:
        due_at = max(start, last_handed + gap_after(delivered, policy))
    if now < due_at:
        return None
    return Planned(customer, start, step, due_at, retry)


def _order(planned: Planned) -> tuple[datetime, str]:
    return planned.due_at, planned.customer.id


def plan_reminders(
    customers: list[CustomerState], policy: Policy, now: datetime
) -> Plan:
    """Given every customer, the policy and `now`, return the plan.

    Due reminders are ordered by when they became due, so what the hourly cap holds
    back goes first on the next run.
    """
    due: list[Planned] = []
    attention: list[Attention] = []
    for customer in customers:
        outcome = evaluate_customer(customer, policy, now)
        if outcome is None:
            continue
        if isinstance(outcome, Planned):
            due.append(outcome)
        else:
            attention.append(outcome)
    due.sort(key=_order)
    return Plan(tuple(due), tuple(attention))

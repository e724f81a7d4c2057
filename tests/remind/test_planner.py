"""The pure planner: due periods, escalation, snooze, unsubscribe, refusals, retries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from durability.remind.planner import (
    Attention,
    Planned,
    Policy,
    evaluate_customer,
    message_id,
    message_key,
    plan_reminders,
)
from durability.remind.records import CustomerState, OutboxEntry

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
POLICY = Policy(interval_days=30, max_reminders=3, gaps_days=(7, 14, 30))


def _customer(**changes: object) -> CustomerState:
    base = CustomerState(
        id="c-1", email="a@example.com", name="A", language="en", interval_days=None,
        last_copy_at=NOW - timedelta(days=31), created_at=NOW - timedelta(days=100),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _sent(customer: CustomerState, step: int, at: datetime, state: str = "sent") -> OutboxEntry:
    assert customer.last_copy_at is not None
    start = customer.last_copy_at + timedelta(days=30)
    return OutboxEntry(message_key(customer.id, start, step), start, step, state, at,
                       customer.email)


def test_evaluate_customer_recent_copy_not_due() -> None:
    assert evaluate_customer(_customer(last_copy_at=NOW - timedelta(days=29)), POLICY,
                             NOW) is None


def test_evaluate_customer_overdue_first_step_due() -> None:
    planned = evaluate_customer(_customer(), POLICY, NOW)
    assert isinstance(planned, Planned)
    assert planned.step == 1
    assert planned.period_start == NOW - timedelta(days=1)
    assert planned.key == "c-1/2026-11-24T10:00:00Z/1"


def test_evaluate_customer_no_copy_due_from_import() -> None:
    planned = evaluate_customer(_customer(last_copy_at=None, created_at=NOW), POLICY, NOW)
    assert isinstance(planned, Planned) and planned.period_start == NOW
    assert evaluate_customer(_customer(last_copy_at=None, created_at=NOW + timedelta(1)),
                             POLICY, NOW) is None


def test_evaluate_customer_own_interval_used() -> None:
    customer = _customer(interval_days=60)
    assert evaluate_customer(customer, POLICY, NOW) is None


def test_evaluate_customer_escalation_waits_for_gaps() -> None:
    customer = _customer(last_copy_at=NOW - timedelta(days=60))
    first = NOW - timedelta(days=29)
    one = replace(customer, outbox=(_sent(customer, 1, first),))
    assert evaluate_customer(one, POLICY, first + timedelta(days=6)) is None
    second = evaluate_customer(one, POLICY, first + timedelta(days=7))
    assert isinstance(second, Planned) and second.step == 2
    two = replace(one, outbox=(*one.outbox, _sent(customer, 2, first + timedelta(days=7))))
    assert evaluate_customer(two, POLICY, first + timedelta(days=20)) is None
    third = evaluate_customer(two, POLICY, first + timedelta(days=21))
    assert isinstance(third, Planned) and third.step == 3


def test_evaluate_customer_max_reminders_listed_for_operator() -> None:
    customer = _customer(last_copy_at=NOW - timedelta(days=200))
    at = NOW - timedelta(days=100)
    done = replace(customer, outbox=tuple(_sent(customer, s, at) for s in (1, 2, 3)))
    outcome = evaluate_customer(done, POLICY, NOW)
    assert isinstance(outcome, Attention)
    assert "3 reminders sent" in outcome.reason


def test_evaluate_customer_uncertain_counts_as_sent_failed_retried() -> None:
    customer = _customer()
    uncertain = replace(customer, outbox=(_sent(customer, 1, NOW, "uncertain"),))
    assert evaluate_customer(uncertain, POLICY, NOW) is None
    failed = replace(customer, outbox=(_sent(customer, 1, NOW, "failed"),))
    retry = evaluate_customer(failed, POLICY, NOW)
    assert isinstance(retry, Planned) and retry.step == 1 and retry.retry


def test_evaluate_customer_snoozed_waits_then_new_period() -> None:
    customer = _customer(snoozed_until=NOW + timedelta(days=7),
                         outbox=())
    assert evaluate_customer(customer, POLICY, NOW) is None
    later = evaluate_customer(customer, POLICY, NOW + timedelta(days=7))
    assert isinstance(later, Planned)
    assert later.period_start == NOW + timedelta(days=7) and later.step == 1


def test_evaluate_customer_unsubscribed_never_due() -> None:
    assert evaluate_customer(_customer(unsubscribed_at=NOW), POLICY, NOW) is None


def test_evaluate_customer_refused_address_suppressed_until_changed() -> None:
    refused = _customer(refused_email="a@example.com")
    assert isinstance(evaluate_customer(refused, POLICY, NOW), Attention)
    changed = replace(refused, email="b@example.com")
    assert isinstance(evaluate_customer(changed, POLICY, NOW), Planned)


def test_plan_reminders_oldest_due_first() -> None:
    customers = [
        _customer(id="new", last_copy_at=NOW - timedelta(days=31)),
        _customer(id="old", last_copy_at=NOW - timedelta(days=90)),
        _customer(id="fine", last_copy_at=NOW),
    ]
    plan = plan_reminders(customers, POLICY, NOW)
    assert [p.customer.id for p in plan.due] == ["old", "new"]


def test_message_id_deterministic_per_key() -> None:
    key = message_key("c-1", NOW, 1)
    assert message_id(key, "example.com") == message_id(key, "example.com")
    assert message_id(key, "example.com") != message_id(message_key("c-1", NOW, 2),
                                                        "example.com")

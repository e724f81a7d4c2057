"""The reminder tables: the SQL prefilter never changes the plan; claims are exclusive."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from durability.config import load_config
from durability.remind import state
from durability.remind.planner import Policy, plan_reminders
from durability.remind.records import CustomerRow
from durability.state.store import open_store

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_load_states_prefilter_same_plan_as_full_load(
    write_config: Callable[[str], Path],
) -> None:
    config = load_config(str(write_config("")))
    store = open_store(config.state.path, config.state.url)
    try:
        rows = [CustomerRow(f"c-{i}", f"u{i}@example.com", "U", "en",
                            (10, None, 45)[i % 3], NOW - timedelta(days=i % 70) if i % 4 else None)
                for i in range(300)]
        state.import_customers(store, rows, NOW - timedelta(days=200))
        state.record_unsubscribe(store, "c-5", "link", NOW)
        state.record_snooze(store, "c-6", NOW + timedelta(days=7), "s", NOW)
        policy = Policy()
        for moment in (NOW, NOW + timedelta(days=20)):
            full = plan_reminders(state.load_states(store), policy, moment)
            filtered = plan_reminders(state.load_states(store, moment, 30), policy, moment)
            assert [p.key for p in filtered.due] == [p.key for p in full.due]
            assert filtered.attention == full.attention
            assert 0 < len(filtered.due) < 300
    finally:
        store.close()


def test_claim_twice_second_refused_failed_reclaimed(
    write_config: Callable[[str], Path],
) -> None:
    config = load_config(str(write_config("")))
    store = open_store(config.state.path, config.state.url)
    try:
        state.import_customers(store, [CustomerRow("c-1", "a@example.com", "A", "en")], NOW)
        args = ("c-1/x/1", "c-1", NOW, 1, "<id@x>", "a@example.com", NOW)
        assert state.claim(store, *args)
        assert not state.claim(store, *args)
        state.finish(store, "c-1/x/1", "failed", "451", NOW)
        assert state.claim(store, *args)
        state.finish(store, "c-1/x/1", "sent", "250", NOW)
        assert not state.claim(store, *args)
        assert state.handed_since(store, NOW - timedelta(hours=1)) == 1
    finally:
        store.close()


def test_claim_customer_confirmed_after_planning_not_claimed(
    write_config: Callable[[str], Path],
) -> None:
    config = load_config(str(write_config("")))
    store = open_store(config.state.path, config.state.url)
    try:
        state.import_customers(store, [CustomerRow("c-1", "a@example.com", "A", "en")], NOW)
        planned_from = state.load_state(store, "c-1")
        assert planned_from is not None
        args = ("c-1/x/1", "c-1", NOW, 1, "<id@x>", "a@example.com", NOW, planned_from)
        state.record_confirmation(store, "c-1", NOW, "link", "link:1", NOW)
        assert not state.claim(store, *args)
        fresh = state.load_state(store, "c-1")
        assert state.claim(store, *args[:-1], fresh)
    finally:
        store.close()

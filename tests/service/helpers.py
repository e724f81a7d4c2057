"""Helpers for the service and store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from durability.config import load_config
from durability.model import Report, Result, Status
from durability.state.store import Store, open_store


def open_configured_store(config_path: Path) -> Store:
    """Given a config file written by `write_config`, open its state store."""
    state = load_config(str(config_path)).state
    return open_store(state.path, state.url)


def make_report(
    check: str = "raid", when: datetime | None = None, targets: int = 2,
    status: Status = Status.OK,
) -> Report:
    """Return a report of `targets` results of one check."""
    moment = when or datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    return Report(
        check=check,
        checked_at=moment,
        results=tuple(
            Result(check=check, target=f"md{i}", status=status, summary=f"array {i}",
                   data={"index": i})
            for i in range(targets)
        ),
    )


def hours(count: float) -> timedelta:
    """Return a timedelta of `count` hours."""
    return timedelta(hours=count)

"""The sending window: local hours, wrapping past midnight, bad values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from durability.config.remind import parse_window
from durability.remind.send import in_window


@pytest.mark.parametrize(("hour", "inside"), [(8, False), (9, True), (17, True), (18, False)])
def test_in_window_day_window_warsaw_time(hour: int, inside: bool) -> None:
    # Warsaw is UTC+1 in November.
    now = datetime(2026, 11, 25, hour - 1, 30, tzinfo=UTC)
    assert in_window(now, "09:00-18:00", "Europe/Warsaw") is inside


@pytest.mark.parametrize(("hour", "inside"), [(21, False), (22, True), (3, True), (6, False)])
def test_in_window_wraps_past_midnight(hour: int, inside: bool) -> None:
    assert in_window(datetime(2026, 11, 25, hour, 0, tzinfo=UTC), "22:00-06:00", "UTC") \
        is inside


def test_in_window_unset_always_open() -> None:
    assert in_window(datetime(2026, 11, 25, 3, 0, tzinfo=UTC), None, None)


@pytest.mark.parametrize("text", ["9-18", "09:00", "25:00-26:00", "10:00-10:00", "a:b-c:d"])
def test_parse_window_bad_raises(text: str) -> None:
    with pytest.raises(ValueError):
        parse_window(text)

"""The human units of the config: durations, sizes, percentages."""

from __future__ import annotations

import pytest

from durability.units import (
    format_bytes,
    format_duration,
    parse_duration,
    parse_percent,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("26h", 93600),
        ("30m", 1800),
        ("7d", 604800),
        ("1h30m", 5400),
        ("90s", 90),
        ("2w", 1209600),
        ("500ms", 0.5),
        (" 1H 30M ", 5400),
        ("1.5h", 5400),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "   ", "5", "h", "5x", "1h-2m", "1h30", "-5m", "m5"])
def test_parse_duration_rejects_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (45, "45s"),
        (60, "1m"),
        (90, "1m 30s"),
        (3600, "1h"),
        (3660, "1h 1m"),
        (93600, "1d 2h"),
        (86400 + 59, "1d 59s"), (86400 + 3600 + 59, "1d 1h"),
        (-90, "-1m 30s"),
        (59.6, "1m"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4096", 4096),
        ("512MiB", 512 * 1024**2),
        ("2G", 2 * 1000**3),
        ("2GB", 2 * 1000**3),
        ("100 kB", 100_000),
        ("1KiB", 1024),
        ("1.5 GiB", int(1.5 * 1024**3)),
        ("3TiB", 3 * 1024**4),
        ("1pb", 1000**5),
        ("10b", 10),
        ("7 B", 7),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "ib", "1ib", "1i", "1 iB", "1XB", "MiB", "1.2.3G", "-1G"])
def test_parse_size_rejects_what_is_not_a_size(text: str) -> None:
    # "1ib" once failed with Python's "substring not found" instead of this message
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "fraction"), [("30%", 0.3), ("0.3", 0.3), ("0%", 0.0), ("100%", 1.0), (" 5% ", 0.05)]
)
def test_parse_percent(text: str, fraction: float) -> None:
    assert parse_percent(text) == pytest.approx(fraction)


@pytest.mark.parametrize("text", ["101%", "-1%", "1.5", "abc", ""])
def test_parse_percent_rejects_out_of_range_and_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_percent(text)


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (5 * 1024**3, "5.0 GiB"),
        (3 * 1024**5, "3072.0 TiB"),
    ],
)
def test_format_bytes(count: float, text: str) -> None:
    assert format_bytes(count) == text

"""Parsing of the human units used in the config: durations, sizes, percentages."""

from __future__ import annotations

import re

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Given "26h", "30m", "1h30m", "7d" or "90s", return seconds.

    Raise ValueError if the text is not a positive duration.
    """
    compact = text.strip().lower().replace(" ", "")
    if not compact:
        raise ValueError("empty duration")
    position = 0
    total = 0.0
    for match in _DURATION.finditer(compact):
        if match.start() != position:
            break
        total += float(match.group(1)) * _DURATION_SECONDS[match.group(2)]
        position = match.end()
    if position != len(compact):
        raise ValueError(f"not a duration: {text!r} (use e.g. '26h', '30m', '7d', '1h30m')")
    return total


def format_duration(seconds: float) -> str:
    """Return a short human duration: "3d 4h", "12m", "45s"."""
    seconds = round(seconds)
    negative = seconds < 0
    seconds = abs(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    if not parts or (len(parts) < 2 and seconds):
        parts.append(f"{seconds}s")
    return ("-" if negative else "") + " ".join(parts)


def parse_percent(text: str) -> float:
    """Given "30%" or "0.3", return the fraction 0.3. Raise ValueError otherwise."""
    stripped = text.strip()
    value = float(stripped[:-1]) / 100 if stripped.endswith("%") else float(stripped)
    if not 0 <= value <= 1:
        raise ValueError(f"not a percentage between 0% and 100%: {text!r}")
    return value


OFF = float("inf")


def parse_percent_or_off(text: str) -> float:
    """Given "30%", "0.3" or "off", return the fraction (OFF, infinity, for "off")."""
    return OFF if text.strip().lower() == "off" else parse_percent(text)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kmgtp])(i)?)?(b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Given "512MiB", "2G", "100 kB" or "4096", return bytes. Raise ValueError otherwise.

    A prefix with "i" (KiB, MiB...) is binary, without it decimal (kB = 1000 bytes).
    """
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. '512MiB', '2GB')")
    number, prefix, binary, _ = match.groups()
    power = "kmgtp".index(prefix.lower()) + 1 if prefix else 0
    factor = (1024 if binary else 1000) ** power
    return int(float(number) * factor)


def format_bytes(count: float) -> str:
    """Return a short binary size: "1.5 GiB"."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"

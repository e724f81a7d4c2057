"""The restore-test view of `durability history`: duration, throughput, verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from durability.units import format_bytes, format_duration


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def restore_history_row(row: Mapping[str, Any]) -> dict[str, str]:
    """Given one recorded restore-test result, return its display columns."""
    data = row.get("data") or {}
    seconds = data.get("seconds") or {}
    total = _number(seconds.get("total"))
    speed = _number(data.get("bytes_per_second"))
    projected = _number(data.get("projected_full_restore_seconds"))
    snapshot = str(data.get("snapshot_id") or "-")
    return {
        "when": str(row.get("checked_at", "")),
        "status": str(row.get("status", "")),
        "source": str(row.get("target", "")),
        "snapshot": snapshot[:8] if data.get("kind") == "restic" else snapshot[-24:],
        "files": str(data.get("files_verified", "-")),
        "bytes": format_bytes(float(data.get("bytes_restored") or 0)),
        "duration": format_duration(total) if total is not None else "-",
        "speed": f"{format_bytes(speed)}/s" if speed is not None else "-",
        "full": format_duration(projected) if projected is not None else "-",
        "verdict": str(row.get("summary", "")),
    }


_COLUMNS = (
    ("when", "WHEN"), ("status", "STATUS"), ("source", "SOURCE"), ("snapshot", "SNAPSHOT"),
    ("files", "FILES"), ("bytes", "BYTES"), ("duration", "TOOK"), ("speed", "SPEED"),
    ("full", "FULL RESTORE"),
)


def render_restore_history(rows: Sequence[Mapping[str, Any]]) -> str:
    """Given recorded restore-test results (newest first), return a text table."""
    if not rows:
        return ""
    table = [restore_history_row(row) for row in rows]
    widths = {
        key: max(len(title), *(len(item[key]) for item in table)) for key, title in _COLUMNS
    }
    lines = ["  ".join(title.ljust(widths[key]) for key, title in _COLUMNS) + "  VERDICT"]
    for item in table:
        cells = "  ".join(item[key].ljust(widths[key]) for key, _ in _COLUMNS)
        lines.append(f"{cells}  {item['verdict']}")
    return "\n".join(lines) + "\n"

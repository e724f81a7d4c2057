"""The restore-test view of `durability history` and the status page: duration, throughput."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from durability.model import Status
from durability.units import format_bytes, format_duration

if TYPE_CHECKING:
    from durability.state.store import Store


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


# -- restore tests over time (the status page) --------------------------------------------

@dataclass(frozen=True)
class RestoreRun:
    """One recorded restore test, as the status page charts it."""

    source: str
    at: datetime
    status: Status
    seconds: float | None
    bytes_per_second: float | None
    projected_full_seconds: float | None
    rto_target_seconds: float | None
    summary: str


def _seconds(value: Any) -> float | None:
    if isinstance(value, dict):
        total = _number(value.get("total"))
        if total is not None:
            return total
        parts = [float(v) for v in value.values() if isinstance(v, int | float)]
        return sum(parts) if parts else None
    return _number(value)


def runs(store: Store, since: datetime, limit: int = 1000) -> list[RestoreRun]:
    """Return the restore tests recorded since `since`, oldest first (reads only)."""
    if not store.has_history():
        return []
    found = []
    for row in store.history(check="restore-test", since=since, limit=limit):
        data = row["data"] if isinstance(row["data"], dict) else {}
        try:
            moment = datetime.fromisoformat(str(row["checked_at"]).replace("Z", "+00:00"))
        except ValueError:
            continue
        found.append(RestoreRun(
            source=str(data.get("source") or row["target"]), at=moment.astimezone(UTC),
            status=Status.__members__.get(str(row["status"]), Status.UNKNOWN),
            seconds=_seconds(data.get("seconds")),
            bytes_per_second=_number(data.get("bytes_per_second")),
            projected_full_seconds=_number(data.get("projected_full_restore_seconds")),
            rto_target_seconds=_number(data.get("rto_target_seconds")),
            summary=str(row["summary"]),
        ))
    found.reverse()
    return found

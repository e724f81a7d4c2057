"""The one result model every check returns, and the rules that combine results.

A check gathers facts, evaluates them into `Result`s and hands a `Report` to the
renderers. Nothing here does I/O, so the cron path pays only for what it uses.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from durability.records import Record, field

TYPE_CHECKING = False  # typing costs the cron job more than the check
if TYPE_CHECKING:
    from typing import Any


class Status(enum.IntEnum):
    """A Nagios status; the integer value is the plugin exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def rank(self) -> int:
        """Return the severity rank: OK < UNKNOWN < WARNING < CRITICAL.

        An UNKNOWN must never hide a CRITICAL, so it ranks below WARNING even though
        its exit code is higher.
        """
        return _RANK[self]


_RANK = {Status.OK: 0, Status.UNKNOWN: 1, Status.WARNING: 2, Status.CRITICAL: 3}


def worst(statuses: Iterable[Status]) -> Status:
    """Given statuses, return the most severe one (OK for none)."""
    result = Status.OK
    for status in statuses:
        if status.rank > result.rank:
            result = status
    return result


class Metric(Record):
    """One measured value, in base units (seconds, bytes, ratios 0..1, counts).

    `name` is the Prometheus name without the `durability_` prefix and must carry its
    unit (`raid_sync_progress_ratio`, `snapshot_age_seconds`). `labels` are extra
    Prometheus labels beyond `check` and `target`. `uom` is the Nagios unit of measure
    ("s", "B", "%", "c" or ""). `warn`/`crit` are Nagios range strings, if any.
    """

    name: str
    value: float
    help: str = ""
    labels: Mapping[str, str] = field(factory=dict)
    uom: str = ""
    warn: str | None = None
    crit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    perfdata: bool = True


class Result(Record):
    """The verdict on one target (an array, a backup set, a restore test...)."""

    check: str
    target: str
    status: Status
    summary: str
    details: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(factory=dict)
    metrics: tuple[Metric, ...] = ()


class Report(Record):
    """All results of one run of one command, rendered four ways by `durability.render`.

    `summary_override` replaces the computed summary (for example "no md arrays").
    `notes` are facts about the run itself (a missing smartctl) shown in every format
    without changing the status.
    """

    check: str
    checked_at: datetime
    results: tuple[Result, ...]
    summary_override: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def status(self) -> Status:
        """Return the worst status of all results."""
        return worst(r.status for r in self.results)

    @property
    def exit_code(self) -> int:
        """Return the Nagios exit code of the report."""
        return int(self.status)

    @property
    def summary(self) -> str:
        """Return one line: the worst problem and how many more, or what is fine."""
        if self.summary_override is not None:
            return self.summary_override
        return summarize(self.results)


def summarize(results: Sequence[Result]) -> str:
    """Given results, name the worst problem first and count the others."""
    if not results:
        return "nothing to check"
    problems = sorted(
        (r for r in results if r.status is not Status.OK),
        key=lambda r: -r.status.rank,
    )
    if problems:
        first = problems[0]
        text = f"{first.target} {first.summary}"
        if len(problems) > 1:
            text += f" (+{len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
        return text
    if len(results) <= 3:
        return "; ".join(f"{r.target}: {r.summary}" for r in results)
    return f"all {len(results)} OK"


def now_utc() -> datetime:
    """Return the current time, timezone-aware UTC, whole seconds."""
    return datetime.now(UTC).replace(microsecond=0)


def isoformat_z(moment: datetime) -> str:
    """Return an ISO-8601 UTC timestamp ending in Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def unknown_report(check: str, reason: str, when: datetime | None = None) -> Report:
    """Return a report with one UNKNOWN result: the check could not run at all."""
    return Report(
        check=check,
        checked_at=when or now_utc(),
        results=(Result(check=check, target=check, status=Status.UNKNOWN, summary=reason),),
        summary_override=reason,
    )


def merge_reports(check: str, reports: Sequence[Report], when: datetime) -> Report:
    """Combine several reports (of `durability check`) into one."""
    results: list[Result] = []
    notes: list[str] = []
    for report in reports:
        if report.results:
            results.extend(report.results)
        else:
            # "no md arrays" is a verdict too: keep it visible in the combined report.
            results.append(Result(report.check, report.check, Status.OK, report.summary))
        notes.extend(report.notes)
    return Report(check=check, checked_at=when, results=tuple(results), notes=tuple(notes))

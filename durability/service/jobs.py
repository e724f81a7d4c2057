"""The jobs of `durability run`: each the same function its CLI command runs.

A job function takes a `Context` and returns a `Report`; the service records it,
writes its Prometheus textfile and, when configured, sends it to the fleet server.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from durability.config import Config
from durability.context import Context
from durability.errors import ConfigError, DurabilityError
from durability.model import Report, Result, Status, unknown_report

JobFunction = Callable[[Context], Report]


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job: what runs, how often, with what jitter and in what window."""

    name: str
    function: JobFunction
    every: float
    jitter: float = 0.0
    window: tuple[time, time] | None = None
    record: bool = True


def check_job(name: str) -> JobFunction:
    """Given a check name, return the job running it as `durability check` does."""

    def run(ctx: Context) -> Report:
        from durability.commands.check import run_named_check

        return run_named_check(name, ctx)

    run.__name__ = f"check_{name.replace('-', '_')}"
    return run


def remind_job(ctx: Context) -> Report:
    """Run one reminder round (as `durability remind` does) and return its report."""
    try:
        module = importlib.import_module("durability.remind.command")
    except ImportError as error:
        return unknown_report("remind", f"reminders not available in this install: {error}",
                              ctx.now)
    function = getattr(module, "run_reminders", None)
    if function is None:
        return unknown_report("remind", "reminders not available in this install", ctx.now)
    try:
        report: Report = function(ctx)
    except DurabilityError as error:
        return unknown_report("remind", str(error), ctx.now)
    return report


def prune_job(ctx: Context) -> Report:
    """Delete history older than `state.retention`; return what was done."""
    retention = ctx.config().state.retention
    cutoff = ctx.now - timedelta(seconds=retention)
    removed = ctx.store().prune_history(cutoff)
    return Report(
        check="prune",
        checked_at=ctx.now,
        results=(Result(
            check="prune", target="history", status=Status.OK,
            summary=f"removed {removed} result(s) older than {cutoff:%Y-%m-%d %H:%M}Z",
            data={"removed": removed},
        ),),
    )


def parse_window(text: str) -> tuple[time, time]:
    """Given 'HH:MM-HH:MM', return the (start, end) local times. Raise ValueError if bad."""
    try:
        start_text, end_text = text.split("-")
        start = datetime.strptime(start_text.strip(), "%H:%M").time()
        end = datetime.strptime(end_text.strip(), "%H:%M").time()
    except ValueError as error:
        raise ValueError(f"expected 'HH:MM-HH:MM', got {text!r}") from error
    if start == end:
        raise ValueError(f"empty window {text!r}")
    return start, end


def in_window(moment: datetime, window: tuple[time, time] | None) -> bool:
    """Given a local time and an optional window, return True if the moment is inside.

    A window whose end is before its start spans midnight (22:00-06:00).
    """
    if window is None:
        return True
    start, end = window
    now = moment.time()
    if start < end:
        return start <= now < end
    return now >= start or now < end


def next_window_start(moment: datetime, window: tuple[time, time]) -> datetime:
    """Given a local time outside the window, return when the window next opens."""
    start = moment.replace(hour=window[0].hour, minute=window[0].minute, second=0,
                           microsecond=0)
    return start if start > moment else start + timedelta(days=1)


def configured_jobs(config: Config) -> list[JobSpec]:
    """Given the config, return the jobs to schedule. Raise ConfigError if contradictory."""
    from durability.commands.check import enabled_checks

    schedule = config.schedule
    checks = enabled_checks(Context(preloaded=config))
    jobs: list[JobSpec] = []
    intervals = {
        "raid": schedule.raid_every,
        "snapshots": schedule.snapshots_every,
        "restore-test": schedule.restore_test_every,
    }
    for name in checks:
        every = intervals.get(name)
        if every:
            jitter = schedule.restore_test_jitter if name == "restore-test" else 0.0
            jobs.append(JobSpec(name, check_job(name), every, jitter))
    if config.remind.enabled and schedule.remind_every:
        window = None
        if config.remind.sending_window:
            try:
                window = parse_window(config.remind.sending_window)
            except ValueError as error:
                raise ConfigError([f"At 'remind.sending_window': {error}"],
                                  config.path or "config") from error
        jobs.append(JobSpec("remind", remind_job, schedule.remind_every, window=window))
    if schedule.prune_every and config.state.record:
        jobs.append(JobSpec("prune", prune_job, schedule.prune_every, record=False))
    if schedule.report_to and not schedule.report_token_file:
        raise ConfigError(
            ["At 'schedule.report_token_file': required with schedule.report_to"],
            config.path or "config",
        )
    return jobs

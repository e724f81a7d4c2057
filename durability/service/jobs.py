"""The jobs of `durability run`: each the same function its CLI command runs.

A job function takes a `Context` and returns a `Report`; the service records it,
writes its Prometheus textfile and, when configured, sends it to the fleet server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from durability.config import Config
from durability.context import Context
from durability.errors import ConfigError, DurabilityError
from durability.model import Report, Result, Status, unknown_report

JobFunction = Callable[[Context], Report]


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job: what runs, how often, with what jitter, and when it may run.

    `is_open(now)` says whether the job may run at `now` (a sending window); a due job
    that may not waits, and is asked again every few minutes.
    """

    name: str
    function: JobFunction
    every: float
    jitter: float = 0.0
    is_open: Callable[[datetime], bool] | None = None
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
    from durability.remind import send, smtp
    from durability.web.signing import read_secret

    config = ctx.config()
    try:
        secret = read_secret(config.web.secret_file)
        password = smtp.read_password(config.smtp.password_file)
        summary = send.run_reminders(
            ctx.store(), config, secret, ctx.now,
            lambda: smtp.SmtpSession(config.smtp, password),
        )
    except DurabilityError as error:
        return unknown_report("remind", str(error), ctx.now)
    text = (f"{summary.due} due, {summary.sent} sent, {summary.held} held back, "
            f"{len(summary.refused)} refused, {len(summary.failed)} failed")
    if summary.outside_window:
        text += " (outside the sending window)"
    if summary.uncertain or summary.abandoned:
        text += f", {summary.uncertain + summary.abandoned} uncertain"
    return Report(
        check="remind",
        checked_at=ctx.now,
        results=(Result(
            check="remind", target="reminders",
            status=Status.OK if summary.exit_code == 0 else Status.WARNING,
            summary=text,
            data={"due": summary.due, "sent": summary.sent, "held": summary.held,
                  "refused": len(summary.refused), "failed": len(summary.failed),
                  "uncertain": summary.uncertain, "abandoned": summary.abandoned,
                  "outside_window": summary.outside_window},
        ),),
    )


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
        from durability.config.remind import parse_window

        window, zone = config.remind.sending_window, config.remind.timezone
        if window:
            try:
                parse_window(window)
            except ValueError as error:
                raise ConfigError([f"At 'remind.sending_window': {error}"],
                                  config.path or "config") from error

        def is_open(now: datetime) -> bool:
            from durability.remind.send import in_window

            return in_window(now, window, zone)

        jobs.append(JobSpec("remind", remind_job, schedule.remind_every,
                            is_open=is_open if window else None))
    if schedule.prune_every and config.state.record:
        jobs.append(JobSpec("prune", prune_job, schedule.prune_every, record=False))
    if schedule.report_to and not schedule.report_token_file:
        raise ConfigError(
            ["At 'schedule.report_token_file': required with schedule.report_to"],
            config.path or "config",
        )
    return jobs

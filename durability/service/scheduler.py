"""The service loop: a `schedule.Scheduler` deciding when, one worker thread running.

The main thread owns the scheduler and the signals; jobs run one at a time on a worker
thread, so SIGTERM is answered within two seconds even while a long restore test runs.
A job is the same function its CLI command runs; whatever it raises is logged and
recorded as UNKNOWN, and the job stays on its schedule (the `schedule` package would
otherwise let the exception end the loop).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import schedule

from durability.config import Config
from durability.context import Context
from durability.errors import ConfigError, DurabilityError, StateError
from durability.model import Report, isoformat_z, unknown_report
from durability.service.jobs import JobSpec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from durability.service.lease import Leadership
    from durability.state.store import Store

log = logging.getLogger(__name__)

# How long a stop waits for the running job before leaving it (the store's
# transactions make an abandoned write vanish whole, never half-written).
STOP_GRACE_SECONDS = 1.2
# How many of the latest job runs `Service.runs` keeps.
RECENT_RUNS = 32
# How often a job waiting for its window (reminders) asks again.
WINDOW_RETRY_SECONDS = 300


@dataclass(frozen=True)
class JobRun:
    """What one run of one job produced."""

    job: str
    started_at: datetime
    seconds: float
    report: Report


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _local_naive(moment: datetime) -> datetime:
    # schedule keeps naive local times.
    return moment.astimezone().replace(tzinfo=None)


class Service:
    """Schedules the configured jobs and runs them until `stop()`."""

    def __init__(
        self,
        config: Config,
        jobs: list[JobSpec],
        *,
        config_path: str | None = None,
        load_config: Callable[[], tuple[Config, list[JobSpec]]] | None = None,
        clock: Callable[[], datetime] = _utc_now,
        wait: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        leadership: Leadership | None = None,
    ) -> None:
        self.config = config
        # With a leadership, jobs run only while this instance holds the service lease.
        self.leadership = leadership
        self._active = leadership is None
        self.config_path = config_path
        self.scheduler = schedule.Scheduler()
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self.stop_event = threading.Event()
        self.reload_event = threading.Event()
        # The latest runs, for --once and tests. Each holds its whole report (several KB
        # for a RAID report of a few arrays), so only a few are kept: a thousand made a
        # long-lived service grow by megabytes before it levelled off.
        self.runs: deque[JobRun] = deque(maxlen=RECENT_RUNS)
        self._load_config = load_config
        self._wait = wait or self._wait_for_stop
        self._specs: dict[str, JobSpec] = {}
        self._jobs: dict[str, schedule.Job] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._pending: set[str] = set()
        self._deferred: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        # Set while the state store cannot be opened for jobs: said once per outage.
        self._store_down = False
        self._textfile_written = 0.0
        # How many times this instance became the active one.
        self._activations = 0
        # Active at once (not a standby taking over later): every job runs at start.
        self._start_active = leadership is not None and leadership.is_leader()
        self.install(jobs, first=True)

    # -- scheduling (main thread) ---------------------------------------------------------
    def install(self, jobs: list[JobSpec], first: bool = False) -> None:
        """Replace the scheduled jobs; on the first install every job runs at once."""
        previous = {name: job.next_run for name, job in self._jobs.items()}
        old_specs = self._specs
        self.scheduler.clear()
        self._specs = {spec.name: spec for spec in jobs}
        self._jobs = {}
        now = _local_naive(self.clock())
        for spec in jobs:
            every = max(1, round(spec.every))
            if spec.jitter >= 1:
                job = self.scheduler.every(every).to(every + round(spec.jitter)).seconds
            else:
                job = self.scheduler.every(every).seconds
            job.do(self._due, spec.name).tag(spec.name)
            same = old_specs.get(spec.name)
            if first or spec.name not in previous:
                job.next_run = now
            elif same is not None and same.every == spec.every and previous[spec.name]:
                job.next_run = previous[spec.name]
            self._jobs[spec.name] = job

    def _due(self, name: str) -> None:
        """Called by the scheduler: hand the job to the worker (once, if not queued)."""
        spec = self._specs.get(name)
        if spec is None:
            return
        now = self.clock()
        if spec.is_open is not None and not spec.is_open(now):
            self._deferred[name] = _local_naive(now) + timedelta(seconds=WINDOW_RETRY_SECONDS)
            log.info("%s: outside its window, asking again at %s", name, self._deferred[name])
            return
        with self._lock:
            if name in self._pending:
                log.warning("%s: still queued or running; this run is skipped", name)
                return
            self._pending.add(name)
        self._queue.put(name)

    def next_run(self, name: str) -> datetime | None:
        """Return when a job runs next (UTC), or None if it is not scheduled."""
        job = self._jobs.get(name)
        if job is None or job.next_run is None:
            return None
        return job.next_run.astimezone(UTC)

    def tick(self) -> float:
        """Run what is due; return how long the loop may sleep."""
        if self.reload_event.is_set():
            self.reload_event.clear()
            self.reload()
        if self.leadership is not None:
            active = self.leadership.is_leader()
            if active != self._active:
                self._active = active
                self._leadership_changed(active)
            elif time.monotonic() - self._textfile_written >= self.leadership.renew_every:
                self.write_service_textfile()
            if not active:
                return 1.0
        self.scheduler.run_pending()
        for name, when in list(self._deferred.items()):
            job = self._jobs.get(name)
            if job is not None:
                job.next_run = when
            del self._deferred[name]
        idle = self.scheduler.idle_seconds
        return 1.0 if idle is None else max(0.0, min(idle, 1.0))

    def is_active(self) -> bool:
        """Return True when this instance runs the jobs (always, without a leadership)."""
        return self.leadership is None or self.leadership.is_leader()

    def _leadership_changed(self, active: bool) -> None:
        if active:
            self._deferred.clear()
            assert self.leadership is not None
            lease = self.leadership.lease
            restarted = lease.previous == lease.instance_name
            if self._activations or not (self._start_active or restarted):
                self._continue_schedule()
            else:
                # Active from the start, or taking over from this instance's own earlier
                # process (restarted after a crash): every job runs now, as at a start.
                log.info("active from the start: every job runs now")
            self._activations += 1
        else:
            log.warning("not the active instance: no further job starts here; a job "
                        "still running has every write refused")
        self.write_service_textfile()

    def _continue_schedule(self) -> None:
        """Taking over: each job runs when it is due after its last recorded run.

        A job the previous active instance ran a moment ago is not run again at once; a
        job it never finished (nothing recorded) runs now. If the history cannot be read,
        every job runs now.
        """
        from durability.state.store import open_store

        now = self.clock()
        last: dict[str, datetime] = {}
        try:
            store = open_store(self.config.state.path, self.config.state.url)
            try:
                for name in self._jobs:
                    rows = store.history(check=name, limit=1)
                    if rows:
                        last[name] = datetime.fromisoformat(
                            str(rows[0]["checked_at"]).replace("Z", "+00:00"))
            finally:
                store.close()
        except StateError as error:
            log.warning("taking over without the history (%s): every job runs now", error)
        for name, job in self._jobs.items():
            spec = self._specs[name]
            due = last[name] + timedelta(seconds=spec.every) if name in last else now
            job.next_run = _local_naive(max(due, now))
        log.warning("taking over: %s", "; ".join(
            f"{name} next {isoformat_z(self.next_run(name) or now)}" for name in self._jobs))

    def write_service_textfile(self, stopping: bool = False) -> None:
        """Write durability_service.prom: whether this instance is the active one."""
        folder = self.config.schedule.textfile_dir
        self._textfile_written = time.monotonic()
        if not folder or self.leadership is None:
            return
        from durability.render import write_output
        from durability.service.textfile import render_service_textfile, textfile_path

        path = textfile_path(folder, "service")
        text = render_service_textfile(self.leadership.lease.instance_name,
                                       self._active and not stopping)
        try:
            write_output(text, path)
        except OSError as error:
            log.error("cannot write Prometheus textfile %s: %s", path, error)

    def reload(self) -> bool:
        """Load the config again; keep the running one (and say why) if the new is bad."""
        if self._load_config is None:
            return False
        try:
            config, jobs = self._load_config()
        except ConfigError as error:
            log.error("config reload failed, keeping the running config: %s", error)
            return False
        except DurabilityError as error:
            log.error("config reload failed, keeping the running config: %s", error)
            return False
        if (config.state, config.web) != (self.config.state, self.config.web):
            # The lock, the open store and the web server belong to the running config.
            log.error("config reload failed, keeping the running config: changes to [state] "
                      "or [web] need a restart of the service")
            return False
        self.config = config
        self.install(jobs)
        log.warning("config reloaded: %d job(s): %s", len(jobs),
                    ", ".join(spec.name for spec in jobs) or "none")
        return True

    def run_forever(self) -> None:
        """Run until `stop()`; then give the running job a moment and return."""
        self._worker = threading.Thread(target=self._work, name="durability-jobs", daemon=True)
        self._worker.start()
        try:
            while not self.stop_event.is_set():
                self._wait(self.tick())
        finally:
            self._queue.put(None)
            self._worker.join(STOP_GRACE_SECONDS)
            if self._worker.is_alive():
                log.warning("stopping while a job is still running; its unfinished "
                            "write is discarded whole")

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler)."""
        self.stop_event.set()

    def request_reload(self) -> None:
        """Ask the loop to reload the config (safe from a signal handler)."""
        self.reload_event.set()

    def drain(self) -> None:
        """Block until every queued job has finished (for tests and `--once`)."""
        self._queue.join()

    def _wait_for_stop(self, seconds: float) -> None:
        self.stop_event.wait(seconds)

    # -- running (worker thread) ----------------------------------------------------------
    def _work(self) -> None:
        while True:
            name = self._queue.get()
            try:
                if name is None:
                    return
                if self.stop_event.is_set() or not self.is_active():
                    continue
                self.run_job(name)
            finally:
                if name is not None:
                    with self._lock:
                        self._pending.discard(name)
                self._queue.task_done()

    def run_job(self, name: str) -> JobRun:
        """Run one job now: call it, record it, write its textfile, send it to the fleet.

        Never raises: a crashing job becomes an UNKNOWN report.
        """
        spec = self._specs[name]
        config = self.config
        started = self.clock()
        store, refused = None, None
        if self.leadership is not None:
            try:
                store = self._guarded_store()
            except StateError as error:
                refused = error
        ctx = Context(config_path=self.config_path, preloaded=config, command=name,
                      now=started.replace(microsecond=0), store=store)
        began = time.monotonic()
        try:
            try:
                if refused is not None:
                    raise refused
                report = spec.function(ctx)
            except StateError as error:
                report = unknown_report(name, f"job {name} could not run: {error}", ctx.now)
            except Exception as error:
                log.exception("job %s crashed", name)
                report = unknown_report(
                    name, f"job {name} crashed: {type(error).__name__}: {error}", ctx.now
                )
            seconds = time.monotonic() - began
            if spec.record and config.state.record:
                report = self._record(ctx, report)
            if not self.is_active():
                # Another instance runs the jobs now; its textfile and reports count.
                log.warning("%s: finished after this instance stopped being the active "
                            "one; its writes were refused", name)
                return JobRun(name, started, seconds, report)
            self._write_textfile(name, report, started, seconds)
            if spec.record:
                self._send_to_fleet(report)
        finally:
            ctx.close()
        run = JobRun(name, started, seconds, report)
        self.runs.append(run)
        # A problem is worth the operator's journal at the default level; routine runs not.
        level = logging.INFO if report.status.name == "OK" else logging.WARNING
        if refused is not None:
            if self._store_down:
                level = logging.INFO  # said at the first failed run of this outage
            self._store_down = True
        elif self._store_down and store is not None:
            self._store_down = False
            log.warning("%s: the state store answers again", name)
        log.log(level, "%s: %s - %s (%.1fs)", name, report.status.name, report.summary, seconds)
        return run

    def _guarded_store(self) -> Store:
        """Open a job's store with the lease's fence on every write transaction."""
        from durability.state.store import open_store

        assert self.leadership is not None
        state = self.config.state
        store = open_store(state.path, state.url)
        try:
            self.leadership.lease.guard_store(store)
        except StateError:
            store.close()
            raise
        return store

    def _record(self, ctx: Context, report: Report) -> Report:
        try:
            ctx.store().record_report(recordable(report))
        except StateError as error:
            log.warning("%s: history not recorded: %s", report.check, error)
            return _with(report, notes=(*report.notes, f"history not recorded: {error}"))
        return report

    def _write_textfile(self, name: str, report: Report, started: datetime,
                        seconds: float) -> None:
        folder = self.config.schedule.textfile_dir
        if not folder:
            return
        from durability.render import write_output
        from durability.service.textfile import render_job_textfile, textfile_path

        text = render_job_textfile(name, report, started, seconds, self.next_run(name))
        path = textfile_path(folder, name)
        try:
            write_output(text, path)
        except OSError as error:
            log.error("%s: cannot write Prometheus textfile %s: %s", name, path, error)

    def _send_to_fleet(self, report: Report) -> None:
        settings = self.config.schedule
        if not settings.report_to or not settings.report_token_file:
            return
        from durability.errors import ProbeError
        from durability.fleet import read_token, send_report

        try:
            token = read_token(settings.report_token_file)
            send_report(settings.report_to, token, report, timeout=10.0,
                        node=settings.node_name)
        except ProbeError as error:
            log.warning("%s: not sent to the fleet server: %s", report.check, error)


def recordable(report: Report) -> Report:
    """Given a report, return it with one result standing for the run if it has none.

    A check that found nothing to judge ("no md arrays") still ran; history and the
    status page must show that it did, and when.
    """
    if report.results:
        return report
    from durability.model import Result

    stand_in = Result(check=report.check, target=report.check, status=report.status,
                      summary=report.summary)
    return _with(report, results=(stand_in,))


def _with(report: Report, **changes: Any) -> Report:
    """Return a copy of the report with some fields changed."""
    fields: dict[str, Any] = {
        "check": report.check, "checked_at": report.checked_at, "results": report.results,
        "summary_override": report.summary_override, "notes": report.notes,
    }
    fields.update(changes)
    return Report(**fields)


def describe_next_runs(service: Service) -> list[str]:
    """Return one line per job: name, interval and next run (for the start-up log)."""
    lines = []
    for name, spec in sorted(service._specs.items()):
        when = service.next_run(name)
        shown = isoformat_z(when) if when else "never"
        extra = f" + up to {timedelta(seconds=spec.jitter)} jitter" if spec.jitter else ""
        lines.append(f"{name}: every {timedelta(seconds=spec.every)}{extra}, next {shown}")
    return lines

"""`durability run`: the scheduled service (all jobs, one process)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from durability.config import Config
from durability.context import Context
from durability.errors import ConfigError, StateError
from durability.service.jobs import JobSpec, configured_jobs
from durability.service.lock import FileLock, default_lock_path
from durability.service.scheduler import Service, describe_next_runs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from durability.service.lease import Leadership

DESCRIPTION = (
    "Run every configured job on its schedule in one process: RAID, snapshots, restore "
    "tests, reminders and history pruning. Every job runs once at start. SIGTERM or "
    "SIGINT stops within 2 seconds (exit 0); SIGHUP reloads the config (a bad new config "
    "is refused and the running one kept). Serves the web endpoints when web.listen is set."
)
EPILOG = """\
examples:
  durability run --config /etc/durability/durability.toml
  durability run --once          run every job once, print a line each, and exit
  systemctl reload durability-run   (sends SIGHUP: reload the config)

intervals, textfile folder and fleet reporting: the [schedule] section
(`durability config sample`).
"""

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --once."""
    parser.add_argument(
        "--once", action="store_true",
        help="run every job once, then exit with the worst status (0..3)",
    )


def load_jobs(ctx: Context) -> tuple[Config, list[JobSpec]]:
    """Load the config freshly from its file and return it with its jobs.

    Raise ConfigError if the file is invalid or the jobs contradict each other.
    """
    from durability.config import load_config

    config = load_config(ctx.config_path)
    return config, configured_jobs(config)


@contextmanager
def service_lock(config: Config, ctx: Context) -> Iterator[None]:
    """Hold the one-service-per-host locks for the block. Raise StateError if taken.

    A SQLite store is always locked by a file beside it, whatever `schedule.lock_file`
    says; that file is locked too. A PostgreSQL store is shared by services on several
    hosts: the service lease decides which one runs the jobs (`leadership`).
    """
    paths: list[str] = []
    if not config.state.url:
        from durability.state.store import default_sqlite_path

        paths.append(default_lock_path(config.state.path or default_sqlite_path()))
    if config.schedule.lock_file and config.schedule.lock_file not in paths:
        paths.append(config.schedule.lock_file)
    held: list[FileLock] = []
    try:
        for path in paths:
            lock = FileLock(path)
            lock.acquire()
            held.append(lock)
        yield
    finally:
        for lock in reversed(held):
            lock.release()


@contextmanager
def signal_handlers(service: Service) -> Iterator[None]:
    """Route SIGTERM/SIGINT to a stop and SIGHUP to a reload, restoring them afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        log.warning("received %s: stopping", signal.Signals(signum).name)
        service.stop()

    def reload(signum: int, frame: FrameType | None) -> None:
        log.warning("received SIGHUP: reloading the config")
        service.request_reload()

    handlers: dict[signal.Signals, Callable[[int, FrameType | None], Any]] = {
        signal.SIGTERM: stop, signal.SIGINT: stop, signal.SIGHUP: reload,
    }
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def web_server(config: Config) -> Iterator[None]:
    """Serve the web app on `web.listen` for the block (nothing when unset).

    Raise ConfigError for a malformed address, StateError if it cannot be bound.
    """
    if not config.web.listen:
        yield
        return
    from durability.state.store import open_store
    from durability.web.app import make_app
    from durability.web.server import make_server, parse_listen

    try:
        host, port = parse_listen(config.web.listen)
    except ValueError as error:
        raise ConfigError([f"At 'web.listen': {error}"], config.path or "config") from error
    app = make_app(config, lambda: open_store(config.state.path, config.state.url))
    try:
        server = make_server(app, host, port)
    except OSError as error:
        raise StateError(f"cannot listen on {host}:{port}: {error.strerror}") from error
    thread = threading.Thread(target=server.run, name="durability-web", daemon=True)
    thread.start()
    log.warning("serving on http://%s:%s/", host, server.effective_port)
    try:
        yield
    finally:
        server.close()
        thread.join(1.0)


def instance_name(config: Config) -> str:
    """Return this service instance's name: schedule.instance_name, node_name or host name."""
    import socket

    schedule = config.schedule
    return schedule.instance_name or schedule.node_name or socket.gethostname()


@contextmanager
def leadership(config: Config) -> Iterator[Leadership]:
    """Hold or wait for the service lease for the block; give it up afterwards.

    Raise ConfigError for contradictory lease intervals, StateError if the store cannot
    be reached at the start.
    """
    from durability.service.lease import Leadership, Lease
    from durability.state.store import open_store

    schedule = config.schedule
    if schedule.lease_renew_every * 3 > schedule.lease_ttl:
        raise ConfigError(
            ["At 'schedule.lease_renew_every': must be at most a third of schedule.lease_ttl"],
            config.path or "config",
        )
    state = config.state
    lease = Lease(lambda: open_store(state.path, state.url), instance_name(config),
                  schedule.lease_ttl, force=not state.url)
    keeper = Leadership(lease, schedule.lease_renew_every)
    lease.try_acquire()  # StateError here: the store is unreachable, exit 3
    keeper.announce_start()
    keeper.start()
    try:
        yield keeper
    finally:
        keeper.stop()


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Run the service until stopped (exit 0), or every job once with --once.

    Raise ConfigError or StateError (exit 3) if it cannot start: a bad config, or
    another service already holding the lock.
    """
    config = ctx.config()
    jobs = configured_jobs(config)
    with service_lock(config, ctx), leadership(config) as keeper:
        if args.once and not keeper.is_leader():
            raise StateError(
                f"another durability run ({keeper.lease.other}) is active on state store "
                f"{ctx.store().location}; --once runs only while no other service is active"
            )
        service = Service(
            config, jobs, config_path=ctx.config_path, load_config=lambda: load_jobs(ctx),
            leadership=keeper,
        )
        service.write_service_textfile()
        if args.once:
            for spec in jobs:
                service.run_job(spec.name)
            for item in service.runs:
                print(f"{item.job}: {item.report.status.name} - {item.report.summary}")
            from durability.model import worst

            return int(worst(item.report.status for item in service.runs))
        waiting = "" if keeper.is_leader() else " (once this instance is active)"
        for line in describe_next_runs(service):
            log.warning("scheduled%s %s", waiting, line)
        with signal_handlers(service), web_server(config):
            service.run_forever()
        service.write_service_textfile(stopping=True)
    log.warning("stopped")
    return 0


__all__ = ["StateError", "add_arguments", "load_jobs", "run"]

"""The service loop on a fast (fake) clock: timing, crashes, windows, reload, stop."""

from __future__ import annotations

import logging
import random
import threading
import time as real_time
import types
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import schedule

from durability.config import Config, load_config
from durability.context import Context
from durability.errors import ConfigError
from durability.model import Report, Status
from durability.service.jobs import JobSpec
from durability.service.scheduler import Service
from tests.service.helpers import make_report, open_configured_store

START = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves; `schedule` reads it too (through `install`)."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    """Return a fake clock that the `schedule` package reads as its "now"."""
    fake = FakeClock(START)
    real = schedule.datetime

    class FakeDatetime(real.datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            if tz is not None:
                return fake.moment.astimezone(tz)  # type: ignore[arg-type]
            return fake.moment.astimezone().replace(tzinfo=None)

    namespace = types.SimpleNamespace(**{k: getattr(real, k) for k in dir(real)
                                         if not k.startswith("__")})
    namespace.datetime = FakeDatetime
    monkeypatch.setattr(schedule, "datetime", namespace)
    yield fake


def run_until(service: Service, clock: FakeClock, end: datetime) -> None:
    """Run the service loop, jumping the fake clock to each next due time, until `end`."""

    def wait(seconds: float) -> None:
        service.drain()
        idle = service.scheduler.idle_seconds or 0.0
        clock.advance(max(idle, 0.5))
        if clock.moment > end:
            service.stop()

    service._wait = wait
    service.run_forever()


def recording(name: str, calls: list[datetime]) -> Callable[[Context], Report]:
    def job(ctx: Context) -> Report:
        calls.append(ctx.now)
        return make_report(name, when=ctx.now, targets=1)

    return job


def offsets(calls: list[datetime]) -> list[int]:
    return [int((moment - START).total_seconds()) for moment in calls]


@pytest.fixture
def config(write_config: Callable[[str], Path]) -> Config:
    return load_config(str(write_config("[raid]\nenabled = false\n")))


def test_run_forever_fast_clock_every_job_on_time(config: Config, clock: FakeClock) -> None:
    raid: list[datetime] = []
    snapshots: list[datetime] = []
    service = Service(config, [
        JobSpec("raid", recording("raid", raid), 300),
        JobSpec("snapshots", recording("snapshots", snapshots), 3600),
    ], clock=clock)
    run_until(service, clock, START + timedelta(hours=2))
    assert offsets(raid) == list(range(0, 7201, 300))
    assert offsets(snapshots) == [0, 3600, 7200]
    store = open_configured_store(Path(config.path or ""))
    try:
        assert len(store.history(check="raid")) == 25
    finally:
        store.close()


def test_run_forever_restore_jitter_gaps_within_bounds(config: Config, clock: FakeClock) -> None:
    calls: list[datetime] = []
    service = Service(config, [JobSpec("restore-test", recording("restore-test", calls),
                                       3600, jitter=600)], clock=clock)
    random.seed(7)  # schedule draws its jitter from the module-level generator
    run_until(service, clock, START + timedelta(hours=12))
    gaps = [b - a for a, b in zip(offsets(calls), offsets(calls)[1:], strict=False)]
    assert len(calls) >= 10
    assert all(3600 <= gap <= 4201 for gap in gaps), gaps
    assert len(set(gaps)) > 1


def test_run_forever_crashing_job_unknown_recorded_and_kept_scheduled(
    config: Config, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[datetime] = []

    def crash(ctx: Context) -> Report:
        calls.append(ctx.now)
        raise RuntimeError("disk on fire")

    service = Service(config, [JobSpec("raid", crash, 300)], clock=clock)
    with caplog.at_level(logging.ERROR):
        run_until(service, clock, START + timedelta(seconds=1000))
    assert offsets(calls) == [0, 300, 600, 900]
    assert "job raid crashed" in caplog.text
    store = open_configured_store(Path(config.path or ""))
    try:
        rows = store.history(check="raid")
    finally:
        store.close()
    assert len(rows) == 4
    assert {r["status"] for r in rows} == {"UNKNOWN"}
    assert rows[0]["summary"] == "job raid crashed: RuntimeError: disk on fire"


def test_due_outside_window_waits_for_window(config: Config, clock: FakeClock) -> None:
    calls: list[datetime] = []

    def is_open(now: datetime) -> bool:
        return 9 <= now.hour < 10

    service = Service(config, [JobSpec("remind", recording("remind", calls), 86400,
                                       is_open=is_open)], clock=clock)
    run_until(service, clock, START + timedelta(hours=34))
    assert offsets(calls) == [9 * 3600, 9 * 3600 + 86400]


def test_reload_bad_config_keeps_running_config(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    def bad() -> tuple[Config, list[JobSpec]]:
        raise ConfigError(["At 'schedule.raid_every': not a duration: 'soon'"], "new.toml")

    job = JobSpec("raid", recording("raid", []), 300)
    service = Service(config, [job], load_config=bad)
    with caplog.at_level(logging.ERROR):
        assert service.reload() is False
    assert service.config is config
    assert service.next_run("raid") is not None
    assert "config reload failed, keeping the running config" in caplog.text
    assert "schedule.raid_every" in caplog.text


def test_reload_good_config_new_interval_installed(config: Config) -> None:
    old = JobSpec("raid", recording("raid", []), 300)
    new = JobSpec("raid", recording("raid", []), 60)
    service = Service(config, [old], load_config=lambda: (config, [new]))
    assert service.reload() is True
    assert service._specs["raid"].every == 60


def test_stop_while_job_runs_returns_within_two_seconds(config: Config) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(ctx: Context) -> Report:
        started.set()
        release.wait(30)
        return make_report("restore-test", when=ctx.now)

    service = Service(config, [JobSpec("restore-test", slow, 3600)])
    loop = threading.Thread(target=service.run_forever)
    loop.start()
    try:
        assert started.wait(10)
        began = real_time.monotonic()
        service.stop()
        loop.join(5)
        elapsed = real_time.monotonic() - began
    finally:
        release.set()
    assert not loop.is_alive()
    assert elapsed < 2.0


def test_run_job_textfile_has_status_last_and_next_run(
    write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    folder = tmp_path / "textfiles"
    folder.mkdir()
    config = load_config(str(write_config(f'[schedule]\ntextfile_dir = "{folder}"\n')))
    service = Service(config, [JobSpec("raid", recording("raid", []), 300)])
    service.run_job("raid")
    text = (folder / "durability_raid.prom").read_text()
    assert 'durability_check_status{check="raid",target="md0"} 0.0' in text
    assert 'durability_job_last_run_timestamp_seconds{durability_job="raid"}' in text
    assert 'durability_job_next_run_timestamp_seconds{durability_job="raid"}' in text
    assert 'durability_job_status{durability_job="raid"} 0.0' in text


def test_configured_jobs_remind_without_secret_unknown_with_reason(
    write_config: Callable[[str], Path],
) -> None:
    from durability.service.jobs import configured_jobs

    config = load_config(str(write_config(
        '[raid]\nenabled = false\n[remind]\nsending_window = "00:00-23:59"\n')))
    jobs = configured_jobs(config)
    assert [job.name for job in jobs] == ["remind", "prune"]
    service = Service(config, jobs)
    run = service.run_job("remind")
    assert run.report.status is Status.UNKNOWN
    assert "web.secret_file" in run.report.summary


def test_configured_jobs_bad_window_config_error(write_config: Callable[[str], Path]) -> None:
    from durability.service.jobs import configured_jobs

    with pytest.raises(ConfigError, match=r"remind\.sending_window"):
        configured_jobs(load_config(str(write_config(
            '[raid]\nenabled = false\n[remind]\nsending_window = "late"\n'))))


def test_reload_state_change_refused_restart_needed(
    config: Config, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    moved = load_config(_other_state(tmp_path))
    job = JobSpec("raid", recording("raid", []), 300)
    service = Service(config, [job], load_config=lambda: (moved, [job]))
    with caplog.at_level(logging.ERROR):
        assert service.reload() is False
    assert service.config is config
    assert "[state] or [web] need a restart" in caplog.text


def _other_state(tmp_path: Path) -> str:
    path = tmp_path / "moved.toml"
    path.write_text(f'[state]\npath = "{tmp_path / "moved.db"}"\n[raid]\nenabled = false\n')
    return str(path)

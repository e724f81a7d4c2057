"""The watchdog that stops a restic run which made no progress."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from durability.helper.guard import StallGuard, children_named, parse_io, parse_stat


def test_parse_stat_name_with_spaces_and_parens() -> None:
    text = "4242 (odd ) name) S 17 4242 4242 0 -1 4194304 10 0 0 0 7 3 0 0 20 0 1 0 1 2 3"
    assert parse_stat(text) == ("odd ) name", 17, 10)


def test_parse_io_counters() -> None:
    assert parse_io("rchar: 100\nwchar: 20\nsyscr: 3\n") == (100, 20)


def _fake_restic(tmp_path: Path) -> Path:
    # A copy of sleep named restic: the kernel reports its name as "restic".
    fake = tmp_path / "restic"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", fake)
    return fake


def test_stall_guard_idle_child_stopped(tmp_path: Path) -> None:
    fake = _fake_restic(tmp_path)
    started = time.monotonic()
    with StallGuard(str(fake), stuck_after=1.0, interval=0.2) as guard:
        child = subprocess.Popen([str(fake), "60"])
        code = child.wait(timeout=30)
    assert guard.stopped is True
    assert code != 0
    assert time.monotonic() - started < 20


def test_stall_guard_busy_child_left_alone(tmp_path: Path) -> None:
    fake = _fake_restic(tmp_path)
    with StallGuard(str(fake), stuck_after=5.0, interval=0.2) as guard:
        child = subprocess.Popen([str(fake), "1"])
        assert child.pid in children_named("restic")
        assert child.wait(timeout=30) == 0
    assert guard.stopped is False

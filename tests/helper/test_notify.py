"""Progress lines and desktop notifications."""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import pytest

from durability.helper.notify import Progress, desktop_session, notify, notify_argv


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_auto_on_terminal_shows_steps() -> None:
    stream = Tty()
    Progress(stream).step("copying")
    assert stream.getvalue() == "durability-helper: copying\n"


def test_progress_auto_without_terminal_silent() -> None:
    stream = io.StringIO()
    Progress(stream).step("copying")
    assert stream.getvalue() == ""


def test_desktop_session_needs_bus_or_display() -> None:
    assert desktop_session({}) is False
    assert desktop_session({"WAYLAND_DISPLAY": "wayland-0"}) is True


def test_notify_argv_urgent() -> None:
    argv = notify_argv("Title", "Body", urgent=True)
    assert argv[0] == "notify-send" and "--urgency=critical" in argv
    assert argv[-2:] == ["Title", "Body"]


def test_notify_without_notify_send_returns_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("DISPLAY", ":0")
    assert notify("t", "b", mode="always") is False


def test_notify_with_notify_send_runs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in notify-send on PATH records its arguments (no desktop here).
    log = tmp_path / "called"
    script = tmp_path / "notify-send"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {log}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    assert notify("Backup copy made", "verified") is False  # auto: no desktop session
    assert not log.exists()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/dev/null")
    assert notify("Backup copy made", "verified") is True
    assert log.read_text().splitlines()[-2:] == ["Backup copy made", "verified"]


def test_progress_watch_terminal_shows_bytes_written(tmp_path: Path) -> None:
    stream = Tty()
    progress = Progress(stream)
    with progress.watch("disk T", str(tmp_path), 10 * 1024 * 1024, interval=0.05,
                        by_reads=False):
        (tmp_path / "data").write_bytes(os.urandom(2 * 1024 * 1024))
        os.sync()
        time.sleep(0.3)
    text = stream.getvalue()
    assert "\rdurability-helper: disk T: " in text
    # The free space of a shared filesystem moves with other programs too: the form only.
    assert re.search(r"disk T: \d+% \([\d.]+ (?:B|KiB|MiB|GiB) of 10\.0 MiB\)", text), text
    assert text.endswith("\n")


def test_progress_watch_counts_what_restic_reads(tmp_path: Path) -> None:
    """A running child named restic: its bytes read are the progress, in percent."""
    import subprocess
    import sys

    data = tmp_path / "archive.bin"
    data.write_bytes(os.urandom(6 * 1024 * 1024))
    fake = tmp_path / "restic"
    fake.symlink_to(sys.executable)
    script = (f"import time\nwith open({str(data)!r}, 'rb') as f:\n"
              "    while f.read(1 << 20):\n        time.sleep(0.1)\ntime.sleep(0.5)\n")
    stream = Tty()
    with Progress(stream).watch("disk T", str(tmp_path), 8 * 1024 * 1024, str(fake),
                                interval=0.1):
        child = subprocess.Popen([str(fake), "-c", script])
        child.wait(30)
    percents = [int(p) for p in re.findall(r"disk T: (\d+)%", stream.getvalue())]
    assert percents, stream.getvalue()
    assert max(percents) >= 70  # 6 of 8 MiB read, plus the interpreter's own files
    assert percents == sorted(percents)


@pytest.mark.parametrize(("done", "total", "elapsed", "expected"), [
    (0, 100 * 2**20, 0.5, "disk T: 0% (0 B of 100.0 MiB)"),
    (25 * 2**20, 100 * 2**20, 60.0, "disk T: 25% (25.0 MiB of 100.0 MiB), about 3 min left"),
    (50 * 2**20, 100 * 2**20, 7200.0,
     "disk T: 50% (50.0 MiB of 100.0 MiB), about 2 h 0 min left"),
    (99 * 2**20, 100 * 2**20, 59400.0,
     "disk T: 99% (99.0 MiB of 100.0 MiB), about 10 min left"),
    (120 * 2**20, 100 * 2**20, 10.0, "disk T: 99% (100.0 MiB of 100.0 MiB)"),
    (90 * 2**20, 100 * 2**20, 10.0, "disk T: 90% (90.0 MiB of 100.0 MiB), under a minute left"),
])
def test_progress_line_percent_and_time_left(
    done: int, total: int, elapsed: float, expected: str,
) -> None:
    from durability.helper.notify import progress_line

    assert progress_line("disk T", done, total, elapsed) == expected


def test_progress_watch_not_a_terminal_silent(tmp_path: Path) -> None:
    stream = io.StringIO()
    with Progress(stream, mode="always").watch("disk T", str(tmp_path), 1, interval=0.01):
        time.sleep(0.05)
    assert stream.getvalue() == ""

"""Progress lines and desktop notifications."""

from __future__ import annotations

import io
import os
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
    with progress.watch("disk T", str(tmp_path), 10 * 1024 * 1024, interval=0.05):
        (tmp_path / "data").write_bytes(os.urandom(2 * 1024 * 1024))
        os.sync()
        time.sleep(0.3)
    text = stream.getvalue()
    assert "\rdurability-helper: disk T: " in text
    assert "written (at most 10.0 MiB)" in text
    assert text.endswith("\n")


def test_progress_watch_not_a_terminal_silent(tmp_path: Path) -> None:
    stream = io.StringIO()
    with Progress(stream, mode="always").watch("disk T", str(tmp_path), 1, interval=0.01):
        time.sleep(0.05)
    assert stream.getvalue() == ""

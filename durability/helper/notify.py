"""Telling the customer what happens: progress on a terminal, a desktop notification.

On a terminal each step is a line on stderr; when started by systemd on plug-in there is
no terminal, so the only sign is a desktop notification (where `notify-send` and a
desktop session exist) and the journal gets the final line.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from durability.errors import CommandError
from durability.execute import run
from durability.helper.i18n import _, format_bytes, format_duration

log = logging.getLogger(__name__)


class Progress:
    """Step lines for a person watching; silent when nobody is."""

    def __init__(self, stream: TextIO | None = None, mode: str = "auto") -> None:
        self.stream = stream if stream is not None else sys.stderr
        if mode == "auto":
            isatty = getattr(self.stream, "isatty", None)
            self.enabled = bool(isatty and isatty())
        else:
            self.enabled = mode == "always"

    def step(self, message: str) -> None:
        """Show one step (only on a terminal, or when asked for)."""
        if self.enabled:
            self.stream.write(f"durability-helper: {message}\n")
            self.stream.flush()

    @contextmanager
    def watch(self, label: str, path: str, total: int, binary: str = "restic",
              interval: float = 1.0, by_reads: bool | None = None) -> Iterator[None]:
        """While inside, show on a terminal how far the copy is, in percent, and the time
        left.

        restic's own output is captured, so progress is what the restic processes this
        process started have read so far (the files being copied), against the total
        size of the files; where that cannot be read, what the copy has written to the
        disk at `path` (its free space shrinking; `by_reads=False` forces that). The
        time left is estimated from the pace so far.
        """
        isatty = getattr(self.stream, "isatty", None)
        if not self.enabled or not (isatty and isatty()):
            yield
            return
        start_free = _free(path)
        name = os.path.basename(binary)
        stop = threading.Event()
        shown = threading.Event()
        began = time.monotonic()

        # Where the kernel counts each process's reads, only restic's count; the disk's
        # free space (which other programs change too) is the fallback elsewhere.
        counted = os.access("/proc/self/io", os.R_OK) if by_reads is None else by_reads

        def show() -> None:
            while not stop.wait(interval):
                done = _bytes_read(name)
                if done is None and counted:
                    continue  # restic has not started yet
                if done is None:
                    now_free = _free(path)
                    if start_free is None or now_free is None:
                        continue
                    done = max(0, start_free - now_free)
                line = progress_line(label, done, total, time.monotonic() - began)
                self.stream.write(f"\rdurability-helper: {line}\x1b[K")
                self.stream.flush()
                shown.set()

        thread = threading.Thread(target=show, name="durability-helper-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            if shown.is_set():
                self.stream.write("\n")
                self.stream.flush()


def progress_line(label: str, done: int, total: int, elapsed: float) -> str:
    """Return one progress line: percent, how much of how much, and the time left.

    The percent stays below 100 until the copy has really ended (restic also reads its
    own index, so the count can pass the total), and the time left is shown once there
    is a pace to go by.
    """
    if total <= 0:
        return _("{label}: {done} copied").format(label=label, done=format_bytes(done))
    shown = min(done, total)
    percent = min(99, int(shown * 100 / total))
    line = _("{label}: {percent}% ({done} of {total})").format(
        label=label, percent=percent, done=format_bytes(shown), total=format_bytes(total))
    if elapsed >= 3 and 0 < shown < total:
        left = (total - shown) * elapsed / shown
        line += ", " + _("{time} left").format(time=format_duration(left))
    return line


def _bytes_read(name: str, proc_root: str = "/proc") -> int | None:
    """Return the bytes the running `name` children of this process have read, or None."""
    from durability.helper.guard import children_named, parse_io

    total = 0
    found = False
    for pid in children_named(name, proc_root):
        try:
            rchar, _wchar = parse_io(Path(proc_root, str(pid), "io").read_text())
        except (OSError, ValueError):
            continue
        total += rchar
        found = True
    return total if found else None


def _free(path: str) -> int | None:
    try:
        stat = os.statvfs(path)
    except OSError:
        return None
    return stat.f_bfree * stat.f_frsize


def desktop_session(environ: dict[str, str] | None = None) -> bool:
    """Return True if a desktop session can show notifications."""
    env = os.environ if environ is None else environ
    return bool(
        env.get("DBUS_SESSION_BUS_ADDRESS") or env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")
    )


def notify_argv(title: str, body: str, urgent: bool) -> list[str]:
    """Return the notify-send command line for one notification."""
    return [
        "notify-send",
        "--app-name=durability-helper",
        f"--urgency={'critical' if urgent else 'normal'}",
        "--icon=drive-removable-media",
        title,
        body,
    ]


def notify(title: str, body: str, *, urgent: bool = False, mode: str = "auto") -> bool:
    """Show a desktop notification where possible; return True if one was shown.

    `mode` is "auto" (when notify-send and a desktop session exist), "never" or
    "always" (try even without a session). A failure to notify is only logged.
    """
    if mode == "never" or shutil.which("notify-send") is None:
        return False
    if mode == "auto" and not desktop_session():
        return False
    try:
        done = run(notify_argv(title, body, urgent), timeout=10)
    except CommandError as error:
        log.info("%s", _("no desktop notification: {error}").format(error=error))
        return False
    return done.returncode == 0

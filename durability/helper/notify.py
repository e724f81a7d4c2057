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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from durability.errors import CommandError
from durability.execute import run
from durability.units import format_bytes

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
    def watch(self, label: str, path: str, total: int, interval: float = 1.0) -> Iterator[None]:
        """While inside, show on a terminal how much has been written to the disk at path.

        restic's own output is captured, so the count comes from the disk's free space:
        it is what this copy has written so far (new data only; unchanged files cost
        nothing), shown against the most it could need.
        """
        isatty = getattr(self.stream, "isatty", None)
        if not self.enabled or not (isatty and isatty()):
            yield
            return
        start = _free(path)
        stop = threading.Event()
        shown = threading.Event()

        def show() -> None:
            while not stop.wait(interval):
                now = _free(path)
                if start is None or now is None:
                    continue
                written = max(0, start - now)
                self.stream.write(
                    f"\rdurability-helper: {label}: {format_bytes(written)} written "
                    f"(at most {format_bytes(total)})\x1b[K"
                )
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
        log.info("no desktop notification: %s", error)
        return False
    return done.returncode == 0

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
from typing import TextIO

from durability.errors import CommandError
from durability.execute import run

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

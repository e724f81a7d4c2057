"""A watchdog for restic runs that stop making progress.

restic 0.14 sometimes hangs for good after a write fails with "no space left on device"
(it has already cleaned up, prints nothing, and waits forever). The copy must still end
with a clear message, so while a copy runs this guard watches the restic processes this
process started: one that used no CPU and did no I/O for `stuck_after` seconds is asked
to stop (SIGINT, so restic removes its lock), and killed if it does not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from pathlib import Path
from types import TracebackType

from durability.helper.i18n import _

log = logging.getLogger(__name__)

GRACE = 15.0


def parse_stat(text: str) -> tuple[str, int, int]:
    """Given the text of /proc/PID/stat, return (comm, ppid, cpu ticks)."""
    close = text.rindex(")")
    comm = text[text.index("(") + 1 : close]
    fields = text[close + 2 :].split()
    # fields[0] is the state; ppid is next; utime and stime are fields 14 and 15 of stat.
    return comm, int(fields[1]), int(fields[11]) + int(fields[12])


def parse_io(text: str) -> tuple[int, int]:
    """Given the text of /proc/PID/io, return (rchar, wchar)."""
    values = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return int(values.get("rchar", "0")), int(values.get("wchar", "0"))


def children_named(name: str, proc_root: str = "/proc") -> list[int]:
    """Return the pids of this process's children whose command name is `name`."""
    me = os.getpid()
    wanted = name[:15]  # the kernel keeps 15 characters of the name
    found = []
    for entry in os.listdir(proc_root):
        if not entry.isdigit():
            continue
        try:
            comm, ppid, _ticks = parse_stat(Path(proc_root, entry, "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me and comm == wanted:
            found.append(int(entry))
    return found


# A stuck restic still prints a status line every second (and its runtime reads a byte
# now and then), so byte counters move by a trickle; progress is counted in steps of
# this many bytes, which real work crosses within seconds and a trickle within minutes.
PROGRESS_STEP = 1 << 16


def activity(pid: int, proc_root: str = "/proc") -> tuple[int, int, int] | None:
    """Return a progress signature of a process (cpu ticks, bytes read and written, in
    PROGRESS_STEP units), or None if the process is gone."""
    try:
        _comm, _ppid, ticks = parse_stat(Path(proc_root, str(pid), "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None
    try:
        rchar, wchar = parse_io(Path(proc_root, str(pid), "io").read_text())
    except (OSError, ValueError):
        rchar = wchar = 0
    return ticks, rchar // PROGRESS_STEP, wchar // PROGRESS_STEP


class StallGuard:
    """While active, stop any child `binary` process that shows no activity for a while."""

    def __init__(self, binary: str, stuck_after: float, interval: float = 1.0) -> None:
        self.name = os.path.basename(binary)
        self.stuck_after = stuck_after
        self.interval = interval
        self.stopped = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="restic-guard", daemon=True)

    def __enter__(self) -> StallGuard:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        seen: dict[int, tuple[tuple[int, int, int], float]] = {}
        while not self._done.wait(self.interval):
            now = time.monotonic()
            for pid in children_named(self.name):
                current = activity(pid)
                if current is None:
                    continue
                last = seen.get(pid)
                if last is None or last[0] != current:
                    seen[pid] = (current, now)
                elif now - last[1] >= self.stuck_after:
                    self._stop(pid)
                    seen.pop(pid, None)

    def _stop(self, pid: int) -> None:
        log.warning("%s", _("restic (process {pid}) made no progress for {seconds} s, so it is "
                            "stopped").format(pid=pid, seconds=f"{self.stuck_after:.0f}"))
        self.stopped = True
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + GRACE
        while time.monotonic() < deadline:
            if activity(pid) is None or pid not in children_named(self.name):
                return
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

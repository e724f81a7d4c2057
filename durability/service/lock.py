"""One service per host and SQLite store: an flock'd file (PostgreSQL: see `lease`).

An flock is released by the kernel when its process ends, however it ends, so a killed
service never leaves a lock that blocks the next one; the pid written into the file
only serves the refusal message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from durability.errors import StateError


def default_lock_path(state_path: str) -> str:
    """Given the SQLite state path, return the service lock file beside it."""
    return state_path + ".service.lock"


class FileLock:
    """An exclusive, non-blocking lock on a file that records the holder's pid."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock. Raise StateError naming the holder if another process has it."""
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        except OSError as error:
            raise StateError(f"cannot open service lock {self.path}: {error}") from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise StateError(
                f"another durability run{who} is already running with lock {self.path}; "
                "only one service may use a state store"
            ) from error
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Release the lock (the file stays; it holds no meaning without the flock)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""

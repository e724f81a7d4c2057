"""Private scratch folders for restore tests, and their removal whatever happens.

Each test gets a fresh folder (mode 0700, created by `mkdtemp`, so it cannot have
existed before) under `restore.scratch_dir`, with an `owner` file naming the process.
The restored tree goes into `tree/` inside it, which restic creates itself. A folder
whose owner process is gone (a test killed with SIGKILL) is removed by the next test;
a folder kept with `--keep` has no owner file and is never touched.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

from durability.errors import DurabilityError

log = logging.getLogger(__name__)

PREFIX = "durability-restore-"
OWNER_FILE = "owner"
KEPT_FILE = "KEPT"


class ScratchError(DurabilityError):
    """Scratch space could not be prepared (missing, not writable, too small)."""


class Terminated(BaseException):
    """The process received SIGTERM; raised in the main thread to unwind and clean up.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` swallows it.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


@dataclass(frozen=True)
class Scratch:
    """One scratch folder of one test."""

    root: str

    @property
    def tree(self) -> str:
        """Return the folder the restore writes into (not created here)."""
        return os.path.join(self.root, "tree")

    @property
    def downloads(self) -> str:
        """Return the folder for downloaded objects (created on demand)."""
        return os.path.join(self.root, "downloads")


def free_bytes(path: str) -> int:
    """Given a folder, return the bytes available to this user on its filesystem."""
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


def ensure_parent(parent: str) -> None:
    """Create the scratch parent folder (0700) if missing. Raise ScratchError if unusable."""
    try:
        os.makedirs(parent, mode=0o700, exist_ok=True)
    except OSError as error:
        raise ScratchError(f"scratch folder {parent}: {error.strerror or error}") from error
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ScratchError(f"scratch folder {parent} is not writable")


def check_space(parent: str, needed: int, reserve: int, available: int | None = None) -> None:
    """Raise ScratchError unless `needed` bytes fit under parent with `reserve` left free.

    `available` is the free space to judge by, if measured earlier (before a restore
    into the folder began); else it is measured now.
    """
    if available is None:
        available = free_bytes(parent)
    if needed + reserve > available:
        from durability.units import format_bytes

        raise ScratchError(
            f"not enough scratch space in {parent}: the restore needs {format_bytes(needed)}"
            f" plus {format_bytes(reserve)} reserve, {format_bytes(available)} free"
        )


def create(parent: str) -> Scratch:
    """Create a fresh private scratch folder under parent and return it."""
    ensure_parent(parent)
    try:
        root = tempfile.mkdtemp(prefix=PREFIX, dir=parent)
        os.chmod(root, 0o700)
        with open(os.path.join(root, OWNER_FILE), "w", encoding="ascii") as handle:
            handle.write(f"{os.getpid()}\n")
    except OSError as error:
        raise ScratchError(f"cannot create scratch folder in {parent}: {error}") from error
    return Scratch(root)


def keep(scratch: Scratch) -> None:
    """Mark a scratch folder as kept for a person: stale sweeps leave it alone."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(scratch.root, OWNER_FILE))
    with open(os.path.join(scratch.root, KEPT_FILE), "w", encoding="utf-8") as handle:
        handle.write("kept by durability restore-test --keep; remove when done\n")


def remove_tree(path: str) -> None:
    """Remove a folder tree, even parts restored read-only. Raise OSError if it stays."""

    def make_writable(function: Callable[..., Any], failed: str, _info: Any) -> None:
        parent = os.path.dirname(failed)
        with contextlib.suppress(OSError):
            os.chmod(parent, stat.S_IRWXU)
        with contextlib.suppress(OSError):
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, stat.S_IRWXU)
        function(failed)

    if not os.path.lexists(path):
        return
    # Directories restored without write or execute permission cannot be emptied.
    for folder, dirs, _files in os.walk(path):
        for name in dirs:
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                with contextlib.suppress(OSError):
                    os.chmod(full, stat.S_IRWXU)
    with contextlib.suppress(OSError):
        os.chmod(path, stat.S_IRWXU)
    shutil.rmtree(path, onerror=make_writable)


def sweep_stale(parent: str) -> list[str]:
    """Remove scratch folders under parent whose owner process is gone; return them."""
    removed: list[str] = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        root = os.path.join(parent, name)
        if not name.startswith(PREFIX) or not os.path.isdir(root):
            continue
        owner = os.path.join(root, OWNER_FILE)
        try:
            with open(owner, encoding="ascii") as handle:
                pid = int(handle.read().strip() or 0)
        except (OSError, ValueError):
            continue
        if pid and _alive(pid):
            continue
        try:
            remove_tree(root)
            removed.append(root)
            log.info("removed stale scratch folder %s (owner %d gone)", root, pid)
        except OSError as error:
            log.warning("cannot remove stale scratch folder %s: %s", root, error)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def terminate_as_exception() -> Iterator[None]:
    """Within the block, SIGTERM, SIGINT and SIGHUP raise Terminated in the main thread.

    Raising unwinds through `subprocess.run`, which kills the running restic and waits
    for it (on KeyboardInterrupt it would not wait, and the zombie would keep restic's
    lock looking live), and through every `finally`, which removes the scratch folder.
    Outside the main thread (the scheduled service), signals are left to their owner.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        if _shield["active"]:
            _shield["pending"] = signum
            return
        raise Terminated(signum)

    # A signal the caller ignores (nohup, a background job) stays ignored.
    previous = {
        sig: signal.signal(sig, handler)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        if signal.getsignal(sig) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# While a scratch folder is being removed, a signal waits: a removal cut short would
# leave scratch behind. Only the main thread installs the handler that reads this.
_shield: dict[str, Any] = {"active": False, "pending": None}


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Within the block, SIGTERM/SIGINT/SIGHUP are held back, then raised as Terminated."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _shield["active"] = True
    try:
        yield
    finally:
        _shield["active"] = False
        pending, _shield["pending"] = _shield["pending"], None
        if pending is not None:
            raise Terminated(pending)


def is_no_space(error: OSError) -> bool:
    """Return whether an OSError means the disk (or quota) is full."""
    return error.errno in (errno.ENOSPC, errno.EDQUOT)

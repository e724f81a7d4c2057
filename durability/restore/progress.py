"""Progress of a restore test: a rich progress bar on a terminal, nothing otherwise.

rich is imported only when stderr is a terminal, so cron runs never load it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol


class Progress(Protocol):
    """Shows how far a phase has come."""

    def phase(self, name: str, total: int | None) -> contextlib.AbstractContextManager[
        Callable[[int], None]
    ]:
        """Return a context whose value advances the phase by a number of bytes."""
        ...  # pragma: no cover

    def watch(self, name: str, total: int | None, folder: str) -> contextlib.AbstractContextManager[
        None
    ]:
        """Within the block, show the bytes written under folder as progress."""
        ...  # pragma: no cover


class QuietProgress:
    """Progress that shows nothing (not a terminal)."""

    @contextlib.contextmanager
    def phase(self, name: str, total: int | None) -> Iterator[Callable[[int], None]]:
        yield lambda _count: None

    @contextlib.contextmanager
    def watch(self, name: str, total: int | None, folder: str) -> Iterator[None]:
        yield


def folder_bytes(folder: str) -> int:
    """Return the bytes of regular files under folder (0 if it does not exist yet)."""
    total = 0
    for current, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(current, name)).st_size
    return total


class RichProgress:
    """A rich progress bar on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichBar

        self._bar: Any = RichBar(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )

    @contextlib.contextmanager
    def phase(self, name: str, total: int | None) -> Iterator[Callable[[int], None]]:
        with self._bar:
            task = self._bar.add_task(name, total=total)
            lock = threading.Lock()

            def advance(count: int) -> None:
                with lock:
                    self._bar.advance(task, count)

            yield advance

    @contextlib.contextmanager
    def watch(self, name: str, total: int | None, folder: str) -> Iterator[None]:
        stop = threading.Event()
        with self._bar:
            task = self._bar.add_task(name, total=total)

            def poll() -> None:
                while not stop.wait(0.5):
                    self._bar.update(task, completed=folder_bytes(folder))

            thread = threading.Thread(target=poll, daemon=True)
            thread.start()
            try:
                yield
            finally:
                stop.set()
                thread.join()
                # The last poll may predate the last bytes: the bar ends on the real total.
                self._bar.update(task, completed=folder_bytes(folder))


def make_progress(enabled: bool | None = None) -> Progress:
    """Return a rich progress bar when stderr is a terminal (or `enabled`), else quiet."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return QuietProgress()
    try:
        return RichProgress()
    except ImportError:
        return QuietProgress()

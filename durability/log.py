"""Logging for the cron path without importing `logging` (about as costly as the check).

`get(name)` returns a logger with the usual methods. Until `logging` is configured by
a long-running process (the service), messages at or above the CLI's level go to
stderr as "durability: LEVEL: message"; once `logging` is imported and has handlers,
they go through it.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs the cron job more than the check
if TYPE_CHECKING:
    from typing import Any


DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40
_NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR"}
_level = WARNING


def set_verbosity(verbosity: int) -> None:
    """Set the stderr threshold from -v counts: 0 warnings, 1 info, 2+ debug."""
    global _level
    _level = WARNING if verbosity <= 0 else INFO if verbosity == 1 else DEBUG


class Logger:
    """A minimal logger; delegates to `logging` when a process has configured it."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def log(self, level: int, message: str, *args: Any, exc_info: bool = False) -> None:
        """Emit one message (%-style args, like `logging`)."""
        logging = sys.modules.get("logging")
        if logging is not None and logging.getLogger().handlers:
            logging.getLogger(self.name).log(level, message, *args, exc_info=exc_info)
            return
        if level < _level:
            return
        text = message % args if args else message
        sys.stderr.write(f"durability: {_NAMES.get(level, level)}: {text}\n")

    def debug(self, message: str, *args: Any, exc_info: bool = False) -> None:
        self.log(DEBUG, message, *args, exc_info=exc_info)

    def info(self, message: str, *args: Any) -> None:
        self.log(INFO, message, *args)

    def warning(self, message: str, *args: Any) -> None:
        self.log(WARNING, message, *args)

    def error(self, message: str, *args: Any) -> None:
        self.log(ERROR, message, *args)


def get(name: str) -> Logger:
    """Return the logger of a module."""
    return Logger(name)

"""The small error hierarchy: every error the CLI turns into a one-line reason."""

from __future__ import annotations


class DurabilityError(Exception):
    """Base of every error durability raises on purpose."""


class ConfigError(DurabilityError):
    """The configuration is invalid; `problems` lists every problem, one line each."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        head = f"{source}: {len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        super().__init__(head + ": " + "; ".join(self.problems))


class ProbeError(DurabilityError):
    """Something could not be read (a file, a device, a remote listing)."""


class ParseError(ProbeError):
    """Text could not be parsed; `line` is the 1-based line number, if known."""

    def __init__(self, message: str, line: int | None = None, text: str | None = None) -> None:
        self.line = line
        self.text = text
        where = f"line {line}: " if line is not None else ""
        shown = f": {text.strip()[:80]!r}" if text is not None else ""
        super().__init__(f"{where}{message}{shown}")


class CommandError(DurabilityError):
    """An external command failed; the message never contains secrets."""

    def __init__(self, message: str, returncode: int | None = None, stderr: str = "") -> None:
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(message)


class StateError(DurabilityError):
    """The state store could not be opened, migrated or written."""

"""Fixtures shared by every test area."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from durability.cli import main

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@dataclass
class CliResult:
    """What one in-process run of `durability` produced."""

    code: int
    stdout: str
    stderr: str


def run_cli_in_process(argv: Sequence[str]) -> CliResult:
    """Run `durability ARGV` in this process and capture its exit code and output."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(argv))
        except SystemExit as done:
            code = int(done.code or 0)
        else:  # pragma: no cover - main always exits
            code = -1
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """Return a function running the CLI in-process: cli("raid", "--format", "json")."""
    return lambda *argv: run_cli_in_process([str(a) for a in argv])


@pytest.fixture
def python() -> str:
    """Return the interpreter running the tests (for subprocess runs of the CLI)."""
    return sys.executable


@pytest.fixture
def state_toml(tmp_path: Path) -> str:
    """Return a `[state]` TOML section for a fresh, private state store.

    Every test that needs a store builds its config with this fixture, so that the
    suite can run against SQLite (default) and PostgreSQL alike.
    """
    return f'[state]\npath = "{tmp_path / "state.db"}"\n'


@pytest.fixture
def write_config(tmp_path: Path, state_toml: str) -> Callable[[str], Path]:
    """Return a function writing a config file (state section included) and its path."""

    def write(body: str = "") -> Path:
        path = tmp_path / "durability.toml"
        path.write_text(state_toml + "\n" + body, encoding="utf-8")
        return path

    return write

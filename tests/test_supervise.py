"""Supervised children: bounded, killed with their whole group, stopped on request."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from durability.errors import CommandError
from durability.execute import Watch, supervise


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_supervise_timeout_kills_child_and_grandchild(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild"
    script = f"sleep 60 & echo $! > {pidfile}; wait"
    done = supervise(["sh", "-c", script], timeout=1.0)
    assert done.stopped == "timed out after 1s"
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(grandchild):
        time.sleep(0.01)
    assert not _alive(grandchild)


def test_supervise_give_up_stops_child_with_reason() -> None:
    class StopOnLine(Watch):
        seen = False

        def stderr_line(self, line: str) -> None:
            self.seen = self.seen or "retrying" in line

        def give_up(self, now: float) -> str | None:
            return "kept retrying" if self.seen else None

    done = supervise(["sh", "-c", "echo retrying >&2; sleep 60"], watch=StopOnLine(),
                     timeout=120)
    assert done.stopped == "kept retrying"
    assert done.stderr == "retrying\n"


def test_supervise_returns_output_masked_and_exit_code() -> None:
    done = supervise(["sh", "-c", "echo out; echo 'err s3cr3t' >&2; exit 3"],
                     secrets=["s3cr3t"])
    assert (done.returncode, done.stdout, done.stderr, done.stopped) == (
        3, "out\n", "err ***\n", None
    )


def test_supervise_missing_program_raises_clear_error() -> None:
    with pytest.raises(CommandError, match="program not found"):
        supervise(["/nonexistent/restic", "version"])


def test_supervise_child_gets_own_process_group() -> None:
    done = supervise(["sh", "-c", "ps -o pgid= -p $$"])
    assert int(done.stdout) != os.getpgrp()

"""SIGTERM and SIGINT mid-restore, and a repository lock held by another restic."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.restore.conftest import Repo, scratch_leftovers

Cli = Callable[..., CliResult]


def _start_cli(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from durability.cli import main; main()",
         "--config", str(config), "restore-test", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for_restore(scratch: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if scratch.exists():
            trees = [p / "tree" for p in scratch.iterdir() if (p / "tree").exists()]
            if trees and any(any(t.rglob("*.bin")) for t in trees):
                return
        time.sleep(0.01)
    raise AssertionError("the restore never started")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_restore_test_signal_mid_restore_leaves_no_scratch(
    large_template: Repo, restore_config: Callable[..., Path], tmp_path: Path, signum: int
) -> None:
    shutil.copytree(large_template.path, tmp_path / "repo")
    repo = Repo(tmp_path / "repo", large_template.password_file, large_template.data_dir, "")
    config = restore_config(repo)
    proc = _start_cli(config, "--format", "json")
    _wait_for_restore(tmp_path / "scratch", proc)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3, stdout + stderr
    assert "interrupted" in stderr
    assert scratch_leftovers(tmp_path) == []
    # No restic child outlives the test.
    assert str(tmp_path / "scratch") not in subprocess.run(
        ["ps", "-eo", "args"], capture_output=True, text=True, check=True
    ).stdout
    # The killed restic's lock is stale and was removed; nothing else was.
    assert list((repo.path / "locks").iterdir()) == []


def _written(lock: Path) -> bool:
    """True for a lock file restic has finished writing (not its temporary file)."""
    if "-tmp-" in lock.name:
        return False
    try:
        return lock.stat().st_size > 0
    except FileNotFoundError:
        return False


def _hold_exclusive_lock(repo: Repo) -> subprocess.Popen[bytes]:
    """Start `restic check --read-data` (an exclusive lock) and stop it holding the lock."""
    locks = repo.path / "locks"
    before = set(locks.iterdir())
    proc = subprocess.Popen(
        ["restic", "--no-cache", "check", "--read-data"],
        env={**os.environ, **repo.env()},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # Stop it once its lock file is in place: restic writes a "-tmp-" file and
        # renames it, so only a renamed file with content counts.
        if any(_written(lock) for lock in set(locks.iterdir()) - before):
            time.sleep(0.05)
            proc.send_signal(signal.SIGSTOP)
            return proc
        assert proc.poll() is None, "restic check finished before its lock was seen"
        time.sleep(0.001)
    raise AssertionError("no lock appeared")


@pytest.mark.slow
def test_restore_test_held_lock_unknown_names_holder_and_keeps_lock(
    cli: Cli, large_template: Repo, tmp_path: Path, restore_config: Callable[..., Path]
) -> None:
    shutil.copytree(large_template.path, tmp_path / "repo")
    repo = Repo(tmp_path / "repo", large_template.password_file, large_template.data_dir, "")
    holder = _hold_exclusive_lock(repo)
    try:
        lock_files = sorted((repo.path / "locks").iterdir())
        assert lock_files, "no lock"
        assert holder.poll() is None
        result = cli("--config", restore_config(repo), "restore-test", "--format", "json")
        summary = json.loads(result.stdout)["summary"]
        assert result.code == 3, summary
        assert f"PID {holder.pid}" in summary
        assert "exclusive lock" in summary
        assert "left in place" in summary
        assert sorted((repo.path / "locks").iterdir()) == lock_files
        assert scratch_leftovers(tmp_path) == []
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The holder is gone: its lock is stale now, removed, and the test runs.
    result = cli("--config", restore_config(repo), "restore-test", "--sample", "2")
    assert result.code == 0, result.stdout + result.stderr

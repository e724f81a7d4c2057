"""No restic started by durability outlives it, even when durability is killed by SIGKILL."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ResticBinary
from tests.restore.conftest import Repo


def _children(pid: int) -> list[int]:
    """Return the pids of the live processes whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for_restic(proc: subprocess.Popen[bytes], word: str, timeout: float = 60) -> int:
    """Return the pid of the restic child of `proc` whose command line holds `word`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for child in _children(proc.pid):
            if "restic" in _command(child) and word in _command(child):
                return child
        time.sleep(0.01)
    raise AssertionError(f"restic {word} never started")


def _kill_and_watch(proc: subprocess.Popen[bytes], restic: int) -> None:
    """SIGKILL durability; return once its restic is gone (fail if it lives on)."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(restic):
        time.sleep(0.02)
    if _alive(restic):
        os.kill(restic, signal.SIGKILL)
        raise AssertionError(f"restic {restic} outlived durability: {_command(restic)}")


def _start(config: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from durability.cli import main; main()",
         "--config", str(config), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_sigkill_mid_restore_kills_restic(
    large_template: Repo, restore_config: Callable[..., Path], tmp_path: Path
) -> None:
    shutil.copytree(large_template.path, tmp_path / "repo")
    repo = Repo(tmp_path / "repo", large_template.password_file, large_template.data_dir, "")
    proc = _start(restore_config(repo), "restore-test", "--format", "json")
    restic = _wait_for_restic(proc, " restore ")
    # Let it write into scratch for a moment, as in the field.
    deadline = time.monotonic() + 30
    scratch = tmp_path / "scratch"
    while time.monotonic() < deadline and not any(scratch.rglob("*.bin")):
        time.sleep(0.01)
    _kill_and_watch(proc, restic)
    # Nothing writes into scratch any more.
    sizes = {p: p.stat().st_size for p in scratch.rglob("*") if p.is_file()}
    time.sleep(0.5)
    assert sizes == {p: p.stat().st_size for p in scratch.rglob("*") if p.is_file()}


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


@pytest.mark.slow
def test_sigkill_mid_listing_kills_restic(
    write_config: Callable[[str], Path], tmp_path: Path, silent_port: int,
    restic_binary: ResticBinary,
) -> None:
    password = tmp_path / "pw"
    password.write_text("pw\n")
    secret = tmp_path / "secret"
    secret.write_text("secret\n")
    config = write_config(
        "[[snapshots.sources]]\n"
        f'name = "hung"\nkind = "restic"\nrepository = "s3:http://127.0.0.1:{silent_port}/bucket/repo"\n'
        f'password_file = "{password}"\naccess_key_id = "a"\nsecret_access_key_file = "{secret}"\n'
    )
    proc = _start(config, "snapshots", "--format", "json")
    restic = _wait_for_restic(proc, "cat config")
    _kill_and_watch(proc, restic)

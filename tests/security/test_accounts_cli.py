"""`durability users` and `durability nodes`: passwords by file, stdin or terminal, policy."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from durability.state.store import open_store
from durability.web import accounts


@pytest.fixture
def config(write_config: Callable[[str], Path]) -> Path:
    """Return a config with a fresh store."""
    return write_config("")


def _run(config: Path, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durability.cli", "--config", str(config), *argv],
        input=stdin, capture_output=True, text=True, timeout=60, check=False)


def _users(config: Path) -> list[str]:
    from durability.config import load_config

    settings = load_config(str(config)).state
    store = open_store(settings.path, settings.url)
    try:
        return [user.name for user in accounts.list_users(store)]
    finally:
        store.close()


def test_users_add_from_stdin_then_list_and_remove(config: Path) -> None:
    done = _run(config, "users", "add", "ops", "--password-file", "-", stdin="Str0ng-Enough\n")
    assert done.returncode == 0, done.stderr
    assert "Str0ng-Enough" not in done.stdout + done.stderr
    assert _users(config) == ["ops"]
    listed = _run(config, "users", "list")
    assert listed.returncode == 0 and listed.stdout.startswith("ops\t")
    assert _run(config, "users", "remove", "ops").returncode == 0
    assert _users(config) == []
    gone = _run(config, "users", "remove", "ops")
    assert gone.returncode == 3 and gone.stderr.count("\n") == 1


@pytest.mark.parametrize(("password", "reason"), [
    ("aaaaaaaaaa", "needs an upper case letter and a digit"),
    ("Sh0rt", "shorter than 8"),
    ("alllower123", "upper case"),
    ("Password1", "common passwords"),
    ("Welcome2026", "common passwords"),
    ("Ops-is-Me-42", "contains the user name"),
])
def test_users_add_weak_password_exit_3_one_line(config: Path, password: str,
                                                 reason: str) -> None:
    done = _run(config, "users", "add", "ops", "--password-file", "-", stdin=password)
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1 and reason in done.stderr
    assert password not in done.stderr
    assert _users(config) == []


def test_users_add_password_file_must_be_private(config: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("Str0ng-Enough\n")
    os.chmod(secret, 0o644)
    done = _run(config, "users", "add", "ops", "--password-file", str(secret))
    assert done.returncode == 3 and "open to other users" in done.stderr
    os.chmod(secret, 0o600)
    assert _run(config, "users", "add", "ops", "--password-file", str(secret)).returncode == 0


def test_users_help_is_help_not_a_user(config: Path) -> None:
    done = _run(config, "users", "add", "--help")
    assert done.returncode == 0 and "--password-file" in done.stdout
    assert _users(config) == []
    odd = _run(config, "users", "add", "-x")
    assert odd.returncode == 3


def test_users_add_without_terminal_or_file_exit_3(config: Path) -> None:
    done = _run(config, "users", "add", "ops")
    assert done.returncode == 3 and "--password-file" in done.stderr
    assert done.stderr.count("\n") == 1


def _on_terminal(config: Path, answers: list[str]) -> tuple[int, str]:
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: the command with the pty as its terminal
        os.execv(sys.executable, [sys.executable, "-m", "durability.cli", "--config",
                                  str(config), "users", "add", "ops"])
    output = b""
    pending = list(answers)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        # Answer each prompt once it is shown (getpass flushes earlier input).
        prompts = output.count(b"New password:") + output.count(b"Again:")
        while pending and len(answers) - len(pending) < prompts:
            os.write(fd, pending.pop(0).encode() + b"\n")
    for _ in range(100):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode("utf-8", "replace")


def test_users_add_asks_twice_on_a_terminal(config: Path) -> None:
    code, output = _on_terminal(config, ["Str0ng-Enough", "Str0ng-Enough"])
    assert code == 0, output
    assert "New password:" in output and "Again:" in output
    assert "Str0ng-Enough" not in output  # not echoed
    assert _users(config) == ["ops"]


def test_users_add_terminal_answers_differ_exit_3(config: Path) -> None:
    code, output = _on_terminal(config, ["Str0ng-Enough", "Str0ng-Enougg"])
    assert code == 3 and "differ" in output
    assert _users(config) == []


def test_nodes_add_refuses_odd_names(config: Path) -> None:
    for name in ("-x", "a b", "a:b", "x" * 65):
        done = _run(config, "nodes", "add", name)
        assert done.returncode == 3, name
        assert done.stdout == ""


def test_common_password_list_is_in_the_package() -> None:
    common: Any = accounts.common_passwords()
    assert "password1" in common and len(common) >= 50

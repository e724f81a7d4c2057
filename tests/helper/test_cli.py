"""The durability-helper command line without disks: usage, messages, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helper.conftest import Helper


def test_main_help_lists_three_steps(python: str) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES")}
    done = subprocess.run(
        [python, "-m", "durability.helper.cli", "--help"], capture_output=True, text=True,
        check=False, env={**env, "LANG": "C.UTF-8"},
    )
    assert done.returncode == 0
    for command in ("enroll", "copy", "confirm", "status"):
        assert command in done.stdout
    assert "exit codes: 0 done, 1 failed" in done.stdout


def test_main_unknown_command_exit_2(helper: Helper) -> None:
    result = helper("frobnicate")
    assert result.code == 2
    assert "invalid choice" in result.stderr


def test_main_bad_number_exit_2(helper: Helper) -> None:
    result = helper("copy", "--read-data-subsets", "0", "/tmp")
    assert result.code == 2
    assert "must be 1 or more" in result.stderr


def test_status_nothing_enrolled_says_how_to_start(helper: Helper) -> None:
    result = helper("status")
    assert result.code == 0
    assert "durability-helper enroll MOUNTPOINT" in result.stdout
    assert json.loads(helper("status", "--json").stdout) == {"disks": [], "pending_receipts": 0}


def test_copy_nothing_enrolled_exit_1(helper: Helper, tmp_path: Path) -> None:
    result = helper("copy", tmp_path)
    assert result.code == 1
    assert "no disk is enrolled yet" in result.stderr


def test_copy_bad_confirm_url_rejected_before_copying(helper: Helper, tmp_path: Path) -> None:
    result = helper("copy", tmp_path, "--confirm-url", "https://x.example/l/snooze/tok")
    assert result.code == 1
    assert "the link that postpones the reminder, not the confirm link" in result.stderr


def test_confirm_without_copy_exit_1(helper: Helper) -> None:
    result = helper("confirm", "https://backup.example/l/confirm/tok")
    assert result.code == 1
    assert "no verified copy yet" in result.stderr


def test_confirm_without_url_asks_for_it(helper: Helper) -> None:
    result = helper("confirm")
    assert result.code == 1
    assert "give the confirm link" in result.stderr


def test_version_printed(python: str) -> None:
    done = subprocess.run(
        [python, "-m", "durability.helper.cli", "--version"], capture_output=True, text=True,
        check=False,
    )
    assert done.stdout.startswith("durability-helper ")
    assert sys.executable

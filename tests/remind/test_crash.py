"""kill -9 of `durability remind` mid-batch, then a rerun: every reminder goes out once.

The SMTP server stalls at a chosen point of the Nth message (before it is handed over,
at RCPT; or after the server has it, at DATA), the test kills the sending process
there, then runs `durability remind` again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.remind.conftest import MailServer

IMPORTED = "2026-11-25T09:00:00Z"
NOW = "2026-11-25T10:00:00Z"
COUNT = 6


def _remind_process(config: Path, now: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "durability.cli", "--config", str(config), "remind",
         "--now", now],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ},
    )


@pytest.mark.parametrize(("stage", "nth"), [
    ("rcpt", 1), ("rcpt", 4), ("data", 1), ("data", 3), ("data", COUNT),
])
def test_remind_killed_mid_batch_rerun_sends_each_once(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path], stage: str, nth: int,
) -> None:
    options = {"stall_rcpt_at": nth} if stage == "rcpt" else {"stall_data_at": nth}
    server = mail_server(**options)
    config = remind_config(server)
    csv = customers_csv([f"c-{i},u{i}@example.com,U {i},en,," for i in range(COUNT)])
    assert cli("--config", config, "customers", "--now", IMPORTED, "import", csv).code == 0

    process = _remind_process(config, NOW)
    try:
        assert server.handler.reached.wait(60), "the server never reached the stall point"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    assert process.returncode == -signal.SIGKILL
    server.handler.stall_rcpt_at = server.handler.stall_data_at = None
    server.handler.release.set()

    rerun = cli("--config", config, "remind", "--now", "2026-11-25T10:05:00Z")
    received = Counter(server.recipients())
    if stage == "data":
        # The server had the Nth message when the sender died: uncertain, never resent.
        assert rerun.code == 0, rerun.stdout + rerun.stderr
        assert "1 message(s) of an interrupted run marked uncertain" in rerun.stdout
        assert received == Counter({f"u{i}@example.com": 1 for i in range(COUNT)})
    else:
        # The Nth message was claimed but never handed over: it goes out now.
        assert rerun.code == 0, rerun.stdout + rerun.stderr
        assert "uncertain" not in rerun.stdout
        assert received == Counter({f"u{i}@example.com": 1 for i in range(COUNT)})
    third = cli("--config", config, "remind", "--now", "2026-11-25T10:10:00Z")
    assert "0 due, 0 sent" in third.stdout
    assert sum(Counter(server.recipients()).values()) == COUNT


def test_remind_uncertain_shown_and_next_step_still_comes(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path],
) -> None:
    server = mail_server(stall_data_at=1)
    config = remind_config(server)
    csv = customers_csv(["c-1,u1@example.com,U,en,,"])
    assert cli("--config", config, "customers", "--now", IMPORTED, "import", csv).code == 0
    process = _remind_process(config, NOW)
    try:
        assert server.handler.reached.wait(60)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    server.handler.stall_data_at = None
    server.handler.release.set()
    assert "marked uncertain" in cli("--config", config, "remind", "--now",
                                     "2026-11-25T11:00:00Z").stdout
    shown = cli("--config", config, "customers", "--now", NOW, "show", "c-1")
    assert "UNCERTAIN: 1 message(s)" in shown.stdout
    as_json = json.loads(cli("--config", config, "customers", "--now", NOW, "show", "c-1",
                             "--format", "json").stdout)
    assert [m["state"] for m in as_json["customer"]["messages"]] == ["uncertain"]
    listed = cli("--config", config, "customers", "--now", NOW, "list")
    assert "1 uncertain message(s)" in listed.stdout
    week = cli("--config", config, "remind", "--now", "2026-12-02T10:00:00Z")
    assert "1 due, 1 sent" in week.stdout
    assert server.recipients() == ["u1@example.com", "u1@example.com"]
    assert server.messages[1]["Subject"].endswith("your own backup copy, reminder 2 of at most 6")


def test_remind_second_run_while_first_sends_exits_3(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path],
) -> None:
    server = mail_server(stall_rcpt_at=1)
    config = remind_config(server)
    csv = customers_csv(["c-1,u1@example.com,U,en,,", "c-2,u2@example.com,U,en,,"])
    assert cli("--config", config, "customers", "--now", IMPORTED, "import", csv).code == 0
    process = _remind_process(config, NOW)
    try:
        assert server.handler.reached.wait(60)
        second = cli("--config", config, "remind", "--now", NOW)
        assert second.code == 3
        assert "another `durability remind` is running" in second.stderr
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    server.handler.stall_rcpt_at = None
    server.handler.release.set()
    after = cli("--config", config, "remind", "--now", NOW)
    assert after.code == 0, after.stdout + after.stderr
    assert Counter(server.recipients()) == Counter({"u1@example.com": 1, "u2@example.com": 1})


def test_remind_store_full_mid_batch_no_duplicate_no_loss(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sqlite3

    from durability.state import store as store_module

    server = mail_server()
    config = remind_config(server)
    # SQLite's page limit gives the real "database or disk is full" path: keep SQLite.
    text = config.read_text(encoding="utf-8")
    text = text[text.index("[smtp]"):]
    config.write_text(f'[state]\npath = "{tmp_path / "full.db"}"\n' + text, encoding="utf-8")
    csv = customers_csv([f"c-{i},u{i}@example.com,{'N' * 100},en,," for i in range(300)])
    assert cli("--config", config, "customers", "--now", IMPORTED, "import", csv).code == 0
    with sqlite3.connect(tmp_path / "full.db") as connection:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
    original = store_module.open_sqlite

    def limited(*args: Any, **kwargs: Any) -> Any:
        opened = original(*args, **kwargs)
        opened.connection.cursor().execute(f"PRAGMA max_page_count = {pages + 4}")
        return opened

    monkeypatch.setattr(store_module, "open_sqlite", limited)
    full = cli("--config", config, "remind", "--now", NOW)
    monkeypatch.undo()
    assert full.code == 3, full.stdout + full.stderr
    assert "full" in full.stderr
    assert 0 < len(server.recipients()) < 300
    rerun = cli("--config", config, "remind", "--now", "2026-11-25T10:05:00Z")
    assert rerun.code == 0, rerun.stdout + rerun.stderr
    assert Counter(server.recipients()) == Counter({f"u{i}@example.com": 1 for i in range(300)})

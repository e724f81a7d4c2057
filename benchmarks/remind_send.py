"""Benchmark: sending reminders to a local aiosmtpd without a rate limit.

Run: .venv/bin/python benchmarks/remind_send.py [MESSAGES]   (default 300)
Baseline: the same number of pre-rendered messages sent with bare smtplib over one
connection (no rendering, no outbox). Then `run_reminders` (render, claim, hand over,
record) over the same server. Prints messages per second and the ratio of times.
Target: at least 50 messages a second.
"""

from __future__ import annotations

import smtplib
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from durability.config import parse_config
from durability.remind import smtp, state
from durability.remind.messages import render_reminder
from durability.remind.records import CustomerRow
from durability.remind.send import plan_now, run_reminders, sender_from
from durability.state.store import open_sqlite


class _Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    """Time bare smtplib and run_reminders over the same local server; print ratios."""
    from aiosmtpd.controller import Controller

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    sink = _Sink()
    port = _port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    secret = b"benchmark-secret-0123456789abcdef"
    try:
        with tempfile.TemporaryDirectory() as folder:
            config = parse_config(
                f'[state]\npath = "{folder}/state.db"\n[smtp]\nport = {port}\n'
                f'security = "none"\nmax_per_hour = {count * 10}\n')
            store = open_sqlite(str(Path(folder) / "state.db"))
            state.import_customers(store, [
                CustomerRow(f"c-{i}", f"user{i}@example.com", f"Użytkownik {i}", "pl", None, None)
                for i in range(count)], now - timedelta(days=1))
            messages = [render_reminder(p, sender_from(config, secret), now)
                        for p in plan_now(store, config, now).due]

            started = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", port) as bare:
                for message in messages:
                    bare.send_message(message)
            baseline = time.perf_counter() - started

            started = time.perf_counter()
            summary = run_reminders(store, config, secret, now,
                                    lambda: smtp.SmtpSession(config.smtp, None))
            ours = time.perf_counter() - started
            store.close()
    finally:
        controller.stop()
    print(f"messages: {count}  (server received {sink.count} over both runs)")
    print(f"bare smtplib, pre-rendered:  {baseline:.3f} s  {count / baseline:.0f} msg/s")
    print(f"durability remind:           {ours:.3f} s  {summary.sent / ours:.0f} msg/s "
          f"({summary.sent} sent)")
    print(f"ratio remind / bare smtplib: {ours / baseline:.2f}")
    print(f"target 50 msg/s:             {'met' if summary.sent / ours >= 50 else 'NOT met'}")


if __name__ == "__main__":
    main()

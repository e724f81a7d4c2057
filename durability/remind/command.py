"""`durability remind`: plan and send the due backup reminders."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path

from durability.context import Context
from durability.errors import DurabilityError

DESCRIPTION = "Plan and send due backup reminders to customers."
EPILOG = """\
exit codes: 0 every due reminder was sent or held back by smtp.max_per_hour (or the
sending window); 1 some were refused, failed or are uncertain; 3 it could not run
(config, state store, SMTP unreachable).

A reminder is claimed in the state store before it is handed to the mail server, so a
crash never sends one twice; one whose outcome is unknown after a crash is marked
uncertain and shown by `durability customers show ID`, never resent automatically.

examples:
  durability remind --dry-run                  print what would be sent
  durability remind --dry-run --eml-dir /tmp/out
  durability remind --now 2026-12-01T09:00:00Z
"""


def moment(text: str) -> datetime:
    """Parse --now (ISO-8601; without an offset, UTC)."""
    from durability.remind.customers import parse_copy_time

    try:
        return parse_copy_time(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --dry-run, --eml-dir and --now."""
    parser.add_argument("--dry-run", action="store_true",
                        help="render what would be sent; send and record nothing")
    parser.add_argument("--eml-dir", metavar="DIR", type=Path,
                        help="with --dry-run: write one .eml file per message into DIR")
    parser.add_argument("--now", type=moment, metavar="ISO-8601",
                        help="the clock for everything (due dates, the cap, Date, links)")


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Plan, then send (or render) the due reminders; print a summary."""
    from durability.remind import send, smtp, state
    from durability.web.signing import read_secret

    now = args.now or ctx.now
    config = ctx.config()
    secret = read_secret(config.web.secret_file)
    store = ctx.store()
    if args.eml_dir and not args.dry_run:
        raise DurabilityError("--eml-dir needs --dry-run")
    if args.dry_run:
        plan = send.plan_now(store, config, now)
        budget = max(0, config.smtp.max_per_hour - state.handed_since(
            store, now - timedelta(hours=1)))
        count = send.write_dry_run(plan, send.sender_from(config, secret), now, budget,
                                   args.eml_dir, sys.stdout)
        where = f" into {args.eml_dir}" if args.eml_dir else ""
        sys.stderr.write(f"durability: dry run: {count} of {len(plan.due)} due reminders "
                         f"rendered{where}, nothing sent\n")
        return 0
    password = smtp.read_password(config.smtp.password_file)
    summary = send.run_reminders(
        store, config, secret, now, lambda: smtp.SmtpSession(config.smtp, password))
    _print_summary(summary)
    return summary.exit_code


def _print_summary(summary: object) -> None:
    from durability.remind.send import RunSummary

    assert isinstance(summary, RunSummary)
    out = sys.stdout
    line = (f"remind: {summary.due} due, {summary.sent} sent, {summary.held} held back, "
            f"{len(summary.refused)} refused, {len(summary.failed)} failed")
    if summary.outside_window:
        line += " (outside the sending window)"
    out.write(line + "\n")
    if summary.abandoned:
        out.write(f"  {summary.abandoned} message(s) of an interrupted run marked uncertain "
                  "(not resent; see `durability customers show ID`)\n")
    for customer_id, answer in summary.refused:
        out.write(f"  refused: {customer_id}: {answer}\n")
    for customer_id, answer in summary.failed:
        out.write(f"  failed: {customer_id}: {answer}\n")
    if summary.stopped:
        out.write(f"  stopped: {summary.stopped}\n")
    for item in summary.attention:
        out.write(f"  attention: {item.customer_id}: {item.reason}\n")

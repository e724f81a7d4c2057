"""`durability customers import|list|show`: who is reminded, and their reminder state."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from durability.context import Context
from durability.errors import DurabilityError

if TYPE_CHECKING:
    from durability.remind.planner import Policy
    from durability.remind.records import CustomerState

DESCRIPTION = "Import, list and show customers and their reminder state."
EPILOG = """\
The import file is CSV with a header: id,email,name,language (pl or en) and optional
interval_days, last_copy_at (ISO-8601). An import is all or nothing: every bad row is
reported with its line number and nothing is stored. A re-import updates names,
addresses and languages and keeps the reminder history; customers absent from the file
are kept.

examples:
  durability customers import customers.csv
  durability customers list --format json
  durability customers show c-1001
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the import, list and show subcommands."""
    from durability.remind.command import moment

    parser.add_argument("--now", type=moment, metavar="ISO-8601",
                        help="the clock (import time, due states)")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="import or update customers from a CSV file")
    imp.add_argument("file", metavar="FILE.csv")
    listing = sub.add_parser("list", help="every customer and their reminder state")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    show = sub.add_parser("show", help="one customer: state, sends and confirmations")
    show.add_argument("id", metavar="ID")
    show.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Run the chosen subcommand."""
    if args.now is not None:
        ctx.now = args.now
    if args.action == "import":
        return _import(args.file, ctx)
    if args.action == "list":
        return _list(args.format, ctx)
    return _show(args.id, args.format, ctx)


def _import(path: str, ctx: Context) -> int:
    from durability.remind.customers import CustomerFileError, parse_customers_csv
    from durability.remind.state import import_customers

    try:
        with open(path, encoding="utf-8", newline="") as handle:
            text = handle.read()
    except UnicodeDecodeError as error:
        raise DurabilityError(f"{path}: not UTF-8 text ({error.reason} at byte "
                              f"{error.start}); nothing imported") from error
    except OSError as error:
        raise DurabilityError(f"cannot read {path}: {error.strerror}") from error
    try:
        rows = parse_customers_csv(text, path)
    except CustomerFileError as error:
        for problem in error.problems:
            sys.stderr.write(f"{path}: {problem}\n")
        raise
    added, updated = import_customers(ctx.store(), rows, ctx.now)
    sys.stdout.write(f"imported {path}: {added} added, {updated} updated\n")
    return 0


def _describe(customer: CustomerState, policy: Policy, now: datetime) -> dict[str, Any]:
    from durability.model import isoformat_z
    from durability.remind.planner import Planned, evaluate_customer, period_start
    from durability.remind.records import UNCERTAIN

    outcome = evaluate_customer(customer, policy, now)
    if customer.unsubscribed_at is not None:
        status = "unsubscribed"
    elif outcome is None:
        start = period_start(customer, policy)
        status = "snoozed" if customer.snoozed_until and customer.snoozed_until > now \
            else ("waiting" if now >= start else "ok")
    elif isinstance(outcome, Planned):
        status = f"due (reminder {outcome.step})"
    else:
        status = f"attention: {outcome.reason}"
    uncertain = sum(1 for entry in customer.outbox if entry.state == UNCERTAIN)
    if uncertain:
        status += f"; {uncertain} uncertain message(s)"
    return {
        "id": customer.id, "email": customer.email, "name": customer.name,
        "language": customer.language, "interval_days": customer.interval_days,
        "last_copy_at": isoformat_z(customer.last_copy_at) if customer.last_copy_at else None,
        "snoozed_until": isoformat_z(customer.snoozed_until)
        if customer.snoozed_until else None,
        "unsubscribed": customer.unsubscribed_at is not None,
        "refused_email": customer.refused_email,
        "state": status,
    }


def _list(fmt: str, ctx: Context) -> int:
    from durability.remind import state
    from durability.remind.send import policy_from

    policy = policy_from(ctx.config())
    store = ctx.store()
    rows = [_describe(c, policy, ctx.now) for c in state.load_states(store)]
    if fmt == "json":
        sys.stdout.write(json.dumps({"schema_version": 1, "customers": rows}, indent=2) + "\n")
        return 0
    if not rows:
        sys.stdout.write("no customers (import some with `durability customers import`)\n")
    for row in rows:
        sys.stdout.write(f"{row['id']:<16} {row['language']}  {row['email']:<32} "
                         f"last copy {row['last_copy_at'] or 'never':<20}  {row['state']}\n")
    return 0


def _show(customer_id: str, fmt: str, ctx: Context) -> int:
    from durability.remind import state
    from durability.remind.send import policy_from

    policy = policy_from(ctx.config())
    store = ctx.store()
    customer = state.load_state(store, customer_id)
    if customer is None:
        raise DurabilityError(f"no customer {customer_id!r}")
    info = _describe(customer, policy, ctx.now)
    refused = state.refused_info(store, customer_id)
    info["refused"] = ({"email": refused[0], "at": refused[1], "answer": refused[2]}
                       if refused[0] else None)
    info["messages"] = state.customer_messages(store, customer_id)
    info["events"] = state.customer_events(store, customer_id)
    if fmt == "json":
        sys.stdout.write(json.dumps({"schema_version": 1, "customer": info}, indent=2) + "\n")
        return 0
    out = sys.stdout
    out.write(f"customer {info['id']}: {info['name']} <{info['email']}> ({info['language']})\n")
    out.write(f"  state: {info['state']}\n")
    out.write(f"  last copy: {info['last_copy_at'] or 'never'}\n")
    if info["snoozed_until"]:
        out.write(f"  snoozed until: {info['snoozed_until']}\n")
    if info["refused"]:
        out.write(f"  REFUSED address {refused[0]} at {refused[1]}: {refused[2]} "
                  "(no reminders until the address changes)\n")
    uncertain = [m for m in info["messages"] if m["state"] == "uncertain"]
    if uncertain:
        out.write(f"  UNCERTAIN: {len(uncertain)} message(s) may or may not have reached the "
                  "customer (a run stopped mid-send); they are not resent\n")
    out.write("  messages:\n" if info["messages"] else "  messages: none\n")
    for m in info["messages"]:
        out.write(f"    {m['handed_at']}  step {m['step']}  {m['state']:<9} {m['email']}  "
                  f"{m['answer']}\n")
    out.write("  events:\n" if info["events"] else "  events: none\n")
    for e in info["events"]:
        out.write(f"    {e['at']}  {e['kind']:<11} {e['source']:<9} "
                  f"{json.dumps(e['detail'], sort_keys=True)}\n")
    return 0

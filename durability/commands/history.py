"""`durability history`: past results from the state store."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta

from durability.context import Context
from durability.units import parse_duration

DESCRIPTION = "Past results from the state store, newest first."
EPILOG = """\
examples:
  durability history --check raid --since 7d
  durability history --target md0 --format json
  durability history --check snapshots --since 14d --until 7d
  durability history restore-test          past restore tests: duration, speed, verdict
"""


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the history filters."""
    parser.add_argument(
        "check_name", nargs="?", metavar="CHECK",
        help="only this check (same as --check); `restore-test` shows duration, "
        "throughput and verdict of each test",
    )
    parser.add_argument("--check", help="only this check (raid, snapshots, restore-test...)")
    parser.add_argument("--target", help="only this target (md0, SOURCE/SET...)")
    parser.add_argument("--since", type=_duration, metavar="DURATION", help="e.g. 24h, 7d")
    parser.add_argument(
        "--until",
        type=_duration,
        metavar="DURATION",
        help="only results older than this (e.g. --since 14d --until 7d: last week)",
    )
    parser.add_argument("--limit", type=int, default=1000, help="at most this many rows")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Print history rows as text or JSON."""
    if args.check_name and args.check and args.check_name != args.check:
        from durability.errors import DurabilityError

        raise DurabilityError(
            f"history: CHECK {args.check_name!r} and --check {args.check!r} disagree"
        )
    args.check = args.check or args.check_name
    since = ctx.now - timedelta(seconds=args.since) if args.since else None
    until = ctx.now - timedelta(seconds=args.until) if args.until else None
    rows = ctx.store().history(
        check=args.check, since=since, target=args.target, limit=args.limit, until=until
    )
    if args.format == "json":
        sys.stdout.write(json.dumps({"schema_version": 1, "history": rows}, indent=2) + "\n")
        return 0
    if not rows:
        sys.stdout.write("no recorded results\n")
    if args.check == "restore-test":
        from durability.restore.history import render_restore_history

        sys.stdout.write(render_restore_history(rows))
        return 0
    for row in rows:
        sys.stdout.write(
            f"{row['checked_at']}  {row['status']:<8} {row['check']:<12} "
            f"{row['target']}: {row['summary']}\n"
        )
    return 0

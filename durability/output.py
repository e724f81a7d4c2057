"""Options and output shared by the check commands (check, raid, snapshots, restore-test)."""

from __future__ import annotations

import argparse
import sys

from durability import log as durability_log
from durability.context import Context
from durability.model import Report
from durability.render import FORMATS, render, write_output

log = durability_log.get(__name__)


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --format and --output to a check command's parser."""
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="output format (default: text); nagios and prometheus for monitors",
    )
    parser.add_argument(
        "--output",
        metavar="FILE",
        help="write to FILE atomically instead of stdout (for the Prometheus textfile "
        "collector, e.g. /var/lib/prometheus/node-exporter/durability_raid.prom; "
        "textfiles are named durability_<check>.prom)",
    )


def emit_report(report: Report, args: argparse.Namespace) -> int:
    """Render the report in the chosen format, write it, and return the exit code.

    A failed write of --output is reported on stderr and turns the exit code UNKNOWN:
    the monitor would otherwise keep reading a stale file.
    """
    text = render(report, args.format)
    output = getattr(args, "output", None)
    if output:
        try:
            write_output(text, output)
        except OSError as error:
            sys.stderr.write(f"durability: cannot write {output}: {error}\n")
            return 3
    else:
        sys.stdout.write(text)
    if args.format != "text" and report.status.name != "OK":
        for result in report.results:
            if result.status.name == "UNKNOWN":
                log.warning("%s: %s", result.target, result.summary)
    return report.exit_code


def record_report(ctx: Context, report: Report) -> Report:
    """Record a report in the state store when `state.record` is on.

    A store that cannot be written does not hide the check's verdict: the report comes
    back with a note saying history was not recorded (and why), and a warning is logged.
    """
    from durability.errors import StateError
    from durability.records import replace

    if not ctx.config().state.record:
        return report
    try:
        ctx.store().record_report(report)
    except StateError as error:
        log.warning("history not recorded: %s", error)
        return replace(report, notes=(*report.notes, f"history not recorded: {error}"))
    return report

"""`durability check`: every check enabled in the config, one combined report."""

from __future__ import annotations

import argparse
import importlib
import logging

from durability.context import Context
from durability.errors import DurabilityError
from durability.model import Report, merge_reports, unknown_report
from durability.output import add_check_arguments, emit_report, record_report

DESCRIPTION = "Run every check enabled in the config and print one combined report."
log = logging.getLogger(__name__)

# check name: "module:function" returning a Report for (ctx). Each is imported only
# when its section of the config enables it.
CHECKS: dict[str, str] = {
    "raid": "durability.raid.command:run_check",
    "snapshots": "durability.snapshots.command:run_check",
    "restore-test": "durability.restore.command:run_check",
}


def enabled_checks(ctx: Context) -> list[str]:
    """Return the names of the checks the config enables."""
    config = ctx.config()
    names = []
    if config.raid.enabled:
        names.append("raid")
    if config.snapshots.enabled and config.snapshots.sources:
        names.append("snapshots")
    if config.restore.source:
        names.append("restore-test")
    return names


def run_named_check(name: str, ctx: Context) -> Report:
    """Run one check by name; a check that fails to run becomes one UNKNOWN result."""
    module_name, function = CHECKS[name].split(":")
    try:
        module = importlib.import_module(module_name)
        report: Report = getattr(module, function)(ctx)
    except DurabilityError as error:
        return unknown_report(name, str(error), ctx.now)
    except ImportError as error:
        return unknown_report(name, f"not available in this install: {error}", ctx.now)
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --format and --output."""
    add_check_arguments(parser)


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Run the enabled checks, render one report, return its exit code."""
    names = enabled_checks(ctx)
    if not names:
        report = unknown_report("check", "no check is enabled in the config", ctx.now)
    else:
        report = merge_reports("check", [run_named_check(n, ctx) for n in names], ctx.now)
        report = record_report(ctx, report)
    return emit_report(report, args)

"""`durability raid`: md RAID health of this node (the cron job on every server)."""

from __future__ import annotations

import argparse
import os
import sys

from durability import log as durability_log
from durability.context import Context
from durability.errors import ConfigError, DurabilityError, StateError
from durability.model import Report
from durability.output import add_check_arguments, emit_report
from durability.records import replace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from durability.config.raid import RaidSettings
    from durability.state.store import Store

log = durability_log.get(__name__)
# The cron path: validates only the config sections it reads ([state], [raid]), since a
# typo in [smtp] must not stop RAID monitoring (`durability config validate` checks them
# all), and logs without importing `logging`.
LIGHTWEIGHT = True

DESCRIPTION = """\
Judge every md array of this node from sysfs (primary) and /proc/mdstat (cross-check),
with member identity from udev or sysfs and SMART from smartctl when installed.

  durability raid                      check (the default action)
  durability raid ack mdN              accept current error counts, mismatch count,
                                       spares and disks as known (or forget a removed array)
  durability raid event EVENT DEVICE [COMPONENT]
                                       mdadm --monitor PROGRAM hook: record, then check
"""
EPILOG = """\
examples:
  durability raid --format nagios --expect md0:2 --expect md1:2
  durability raid --format prometheus \\
      --output /var/lib/prometheus/node-exporter/durability_raid.prom
  durability raid --proc-root CAPTURE --sys-root CAPTURE/sys   (judge a captured state)
  durability raid ack md1                    (after reviewing a mismatch or a disk swap)
  mdadm.conf:  PROGRAM /usr/local/sbin/durability-mdadm-event   (see examples/mdadm/)

Works without a config file; history (stalled rebuilds, scrub age, swapped disks) needs
the state store, which is on by default.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the raid options."""
    parser.add_argument(
        "action",
        nargs="*",
        metavar="ACTION",
        help="nothing (check), 'ack mdN', or 'event EVENT DEVICE [COMPONENT]'",
    )
    add_check_arguments(parser)
    parser.add_argument("--proc-root", metavar="DIR", help="read DIR/mdstat (default /proc)")
    parser.add_argument("--sys-root", metavar="DIR", help="read DIR/block/mdN/md (default /sys)")
    parser.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="mdN[:DISKS]",
        help="array that must exist, with DISKS active slots (repeatable)",
    )
    parser.add_argument("--no-smart", action="store_true", help="do not run smartctl")
    parser.add_argument(
        "--no-state",
        action="store_true",
        help="do not read or write the state store (no history-based checks)",
    )
    parser.add_argument(
        "--report-to",
        metavar="URL",
        help="also send the result to a central `durability serve` (fleet view)",
    )
    parser.add_argument(
        "--report-token-file",
        metavar="FILE",
        help="file holding this node's token for --report-to",
    )
    parser.add_argument(
        "--node",
        metavar="NAME",
        help="this node's name for --report-to (default: schedule.node_name, else the hostname)",
    )


def _settings(
    args: argparse.Namespace, ctx: Context
) -> tuple[RaidSettings, dict[str, int | None]]:
    from durability.config.raid import check_expect
    from durability.raid.check import parse_expect

    settings = ctx.config().raid
    changes = {}
    if getattr(args, "proc_root", None):
        changes["proc_root"] = args.proc_root
    if getattr(args, "sys_root", None):
        changes["sys_root"] = args.sys_root
    settings = replace(settings, **changes)
    problems = [
        f"At '--expect': {p}" for p in (check_expect(v) for v in getattr(args, "expect", [])) if p
    ]
    if problems:
        raise ConfigError(problems, "command line")
    return settings, parse_expect(getattr(args, "expect", []))


def _smart_enabled(args: argparse.Namespace, settings: RaidSettings) -> bool:
    # SMART asks the live devices: never when judging a captured tree.
    sys_root = settings.sys_root
    return (
        settings.smart
        and not getattr(args, "no_smart", False)
        and os.path.realpath(sys_root) == "/sys"
    )


def judges_capture(settings: RaidSettings) -> bool:
    """Return True when the check reads a captured tree, not this node's /proc and /sys."""
    return os.path.realpath(settings.proc_root) != "/proc" or (
        os.path.realpath(settings.sys_root) != "/sys"
    )


def _store(args: argparse.Namespace, ctx: Context) -> tuple[Store | None, str | None]:
    if getattr(args, "no_state", False) or not ctx.config().state.record:
        return None, None
    if _captured_without_store(args, ctx):
        return None, None
    try:
        return ctx.store(), None
    except StateError as error:
        return None, str(error)


def build_report(args: argparse.Namespace, ctx: Context) -> Report:
    """Run the RAID check as the options and config say and return its report."""
    from durability.raid.check import run_raid

    settings, expect = _settings(args, ctx)
    store, problem = _store(args, ctx)
    report = run_raid(
        settings,
        expect,
        store,
        ctx.now,
        _smart_enabled(args, settings),
        ctx.config().state.retention,
    )
    if problem:
        report = replace(report, notes=(*report.notes, f"state store not available: {problem}"))
    elif store is None and not getattr(args, "no_state", False) and _captured_without_store(
        args, ctx
    ):
        note = (
            "captured tree: nothing recorded in the default state store "
            "(set state.path to keep history of captures)"
        )
        report = replace(report, notes=(*report.notes, note))
    return report


def run_check(ctx: Context) -> Report:
    """Run the RAID check with the config only (for `durability check` and the service)."""
    args = argparse.Namespace(expect=[], no_smart=False, no_state=False)
    return build_report(args, ctx)


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Dispatch check, ack or event."""
    action = list(args.action)
    if not action or action == ["check"]:
        return _check(args, ctx)
    if action[0] == "ack" and len(action) == 2:
        return _ack(args, ctx, action[1])
    if action[0] == "event" and len(action) in (3, 4):
        return _event(args, ctx, action[1], action[2], action[3] if len(action) == 4 else None)
    raise ConfigError(
        [f"unknown action {' '.join(action)!r}: use 'ack mdN' or 'event EVENT DEVICE [COMPONENT]'"],
        "command line",
    )


def _check(args: argparse.Namespace, ctx: Context) -> int:
    report = build_report(args, ctx)
    report = _maybe_record_results(args, ctx, report)
    code = emit_report(report, args)
    if args.report_to:
        code = _send(args, ctx, report, code)
    return code


def _captured_without_store(args: argparse.Namespace, ctx: Context) -> bool:
    # A captured tree is not this node: its arrays must never enter the node's own
    # inventory (the real node would then report them missing). Only a store named
    # in the config (state.path or state.url) records captures.
    settings, _ = _settings(args, ctx)
    state = ctx.config().state
    return judges_capture(settings) and state.path is None and state.url is None


def _maybe_record_results(args: argparse.Namespace, ctx: Context, report: Report) -> Report:
    if getattr(args, "no_state", False) or _captured_without_store(args, ctx):
        return report
    from durability.output import record_report

    return record_report(ctx, report)


def _send(args: argparse.Namespace, ctx: Context, report: Report, code: int) -> int:
    from durability.fleet import send_report

    if not args.report_token_file:
        sys.stderr.write("durability: --report-to needs --report-token-file\n")
        return 3
    try:
        with open(args.report_token_file, encoding="utf-8") as handle:
            token = handle.read().strip()
        node = args.node or ctx.config().schedule.node_name or None
        send_report(args.report_to, token, report, timeout=10.0, node=node)
    except OSError as error:
        sys.stderr.write(f"durability: cannot read {args.report_token_file}: {error.strerror}\n")
        return 3 if code == 0 else code
    except DurabilityError as error:
        # The local verdict stands; a failed report is said, and never turns OK into OK.
        sys.stderr.write(f"durability: result not sent to {args.report_to}: {error}\n")
        return 3 if code == 0 else code
    return code


def _ack(args: argparse.Namespace, ctx: Context, name: str) -> int:
    from durability.raid import history
    from durability.raid.check import gather

    settings, _ = _settings(args, ctx)
    if _captured_without_store(args, ctx):
        raise ConfigError(
            [
                "`raid ack` on a captured tree needs a state store named in the config "
                "(state.path): the default store is this node's own"
            ],
            "command line",
        )
    gathered = gather(settings, smart=False)
    facts = next((a for a in gathered.arrays if a.name == name), None)
    message = history.acknowledge(ctx.store(), facts, name, ctx.now)
    sys.stdout.write(message + "\n")
    return 0


def _event(
    args: argparse.Namespace, ctx: Context, event: str, device: str, component: str | None
) -> int:
    from durability.raid import history

    try:
        if not _captured_without_store(args, ctx):
            history.record_event(ctx.store(), event, device, component, ctx.now)
    except StateError as error:
        log.warning("event %s %s not recorded: %s", event, device, error)
    log.info("mdadm event %s on %s %s", event, device, component or "")
    return _check(args, ctx)

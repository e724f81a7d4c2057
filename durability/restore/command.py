"""`durability restore-test`: restore one snapshot into scratch, verify it, time it, clean up."""

from __future__ import annotations

import argparse
import sys

from durability.config import Config
from durability.config.snapshots import SourceSettings
from durability.context import Context
from durability.errors import DurabilityError
from durability.model import Report
from durability.output import add_check_arguments, emit_report, record_report
from durability.restore.outcome import CHECK, Outcome, evaluate_restore
from durability.restore.progress import Progress, QuietProgress, make_progress
from durability.restore.runner import Options
from durability.restore.scratch import Terminated

DESCRIPTION = """\
Restore one snapshot of a source into a fresh private scratch folder, prove the content
is right (file list, sizes, hashes, live files where present), time every phase, project
a full restore against restore.rto_target, and always clean up."""
EPILOG = """\
verdict: UNKNOWN when the test could not start (wrong password, missing repository,
no such snapshot, lock held, no scratch space); CRITICAL for a restic repository
whose id is not the one recorded for the source (replaced: nothing is restored until
`durability snapshots ack SOURCE`) and for anything wrong with the data once restoring
has begun; WARNING when a full restore would exceed
restore.rto_target; OK otherwise.

examples:
  durability restore-test --source web-restic
  durability restore-test --source web-restic --snapshot random --sample 200
  durability restore-test --source s3-dumps --snapshot db/2026-11-24.tar.gz --keep
  durability history restore-test
"""

TESTABLE_KINDS = ("restic", "s3")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from error
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the restore-test options and --format/--output."""
    parser.add_argument(
        "--source", metavar="NAME",
        help="source to test (default: restore.source, or the only restic/s3 source)",
    )
    parser.add_argument(
        "--snapshot", default="latest", metavar="latest|random|ID",
        help="snapshot to restore: latest (default), random, a restic snapshot ID, or "
        "an S3 object key",
    )
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument(
        "--full", action="store_true", help="restore and verify every file (the default)"
    )
    amount.add_argument(
        "--sample", type=_positive, metavar="N", help="restore and verify N files at random"
    )
    parser.add_argument(
        "--keep", action="store_true",
        help="leave the restored tree in place for inspection and print where it is",
    )
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    add_check_arguments(parser)


def find_source(config: Config, name: str | None) -> SourceSettings:
    """Given the config and an optional name, return the source to test.

    Raise DurabilityError naming the choices if there is none or it is ambiguous.
    """
    sources = config.snapshots.sources
    testable = [s for s in sources if s.kind in TESTABLE_KINDS]
    name = name or config.restore.source
    if name:
        for source in sources:
            if source.name == name:
                if source.kind not in TESTABLE_KINDS:
                    raise DurabilityError(
                        f"source {name} is of kind {source.kind}; restore tests support "
                        f"{' and '.join(TESTABLE_KINDS)} sources"
                    )
                return source
        known = ", ".join(s.name for s in testable) or "none"
        raise DurabilityError(f"no source named {name!r} (restic/s3 sources: {known})")
    if len(testable) == 1:
        return testable[0]
    if not testable:
        raise DurabilityError("no restic or s3 source in [[snapshots.sources]] to test")
    names = ", ".join(s.name for s in testable)
    raise DurabilityError(f"several sources could be tested; choose one with --source ({names})")


def run_source(
    config: Config, source: SourceSettings, options: Options, ctx: Context, progress: Progress
) -> Outcome:
    """Run one restore test of a source and return its facts."""
    if source.kind == "s3":
        from durability.restore.s3restore import run_s3

        return run_s3(source, config.restore, options, ctx.now, progress)
    from durability.restore.runner import run_restic

    return run_restic(
        source, config.restore, options, ctx.now, progress, program=config.snapshots.restic,
        open_store=ctx.store,
    )


def build_report(
    ctx: Context, source_name: str | None, options: Options, progress: Progress
) -> Report:
    """Run the test and return its report (not recorded: the caller records it).

    Raise DurabilityError if the run was stopped by a signal (after cleaning up).
    """
    config = ctx.config()
    source = find_source(config, source_name)
    try:
        outcome = run_source(config, source, options, ctx, progress)
    except Terminated as stop:
        raise DurabilityError(f"{stop}; restore test abandoned, scratch folder removed") from None
    result = evaluate_restore(outcome, config.restore.rto_target)
    return Report(check=CHECK, checked_at=ctx.now, results=(result,))


def run_check(ctx: Context) -> Report:
    """Run the restore test `restore.source` names, quietly.

    For `durability check` and the scheduled service, which records the report itself.
    """
    settings = ctx.config().restore
    options = Options(snapshot="latest", sample=settings.sample)
    return build_report(ctx, settings.source, options, QuietProgress())


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Run one restore test, record it, print the report, return its exit code."""
    sample = args.sample or (0 if args.full else ctx.config().restore.sample)
    options = Options(snapshot=args.snapshot, sample=sample, keep=args.keep, seed=args.seed)
    report = record_report(ctx, build_report(ctx, args.source, options, make_progress()))
    for result in report.results:
        kept = result.data.get("kept_path")
        if kept:
            sys.stderr.write(f"durability: restored tree kept at {kept} (remove it when done)\n")
    return emit_report(report, args)

"""`durability snapshots`: prove each source's backups exist, are fresh, complete and
not shrinking.

Sources are gathered concurrently (`snapshots.concurrency` at once); one that cannot be
listed is UNKNOWN for itself only, naming the cause, and the others are still judged.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from durability.config.snapshots import SnapshotSettings, SourceSettings
from durability.context import Context
from durability.errors import DurabilityError, StateError
from durability.model import Report, Result, Status, unknown_report
from durability.output import add_check_arguments, emit_report, record_report
from durability.records import replace
from durability.snapshots.evaluate import (
    CHECK,
    Policy,
    evaluate_failure,
    evaluate_listing,
    resolve_policy,
)
from durability.snapshots.records import Listing, SnapshotSource

if TYPE_CHECKING:
    from durability.state.store import Store

DESCRIPTION = (
    "Prove that the provider's snapshots exist, are fresh, complete and not shrinking: "
    "S3 objects, EBS snapshots, AWS Backup recovery points and restic repositories, "
    "per [[snapshots.sources]] of the config."
)
EPILOG = """\
rules: the newest complete snapshot of each set younger than max_age is OK, within
max_age + grace WARNING, older (or none, or only failed/pending ones) CRITICAL; fewer
than min_count, a shrink beyond max_shrink (default 50%), an empty newest snapshot, a
snapshot dated in the future, or a stale restic lock is WARNING; a restic snapshot file
restic cannot read, a replaced repository (until `snapshots ack`) or damage found by the
daily `restic check` is CRITICAL; a source that cannot be listed is UNKNOWN with the
reason.

examples:
  durability snapshots                              every source, human readable
  durability snapshots --source web-restic --format json
  durability snapshots --format prometheus \\
      --output /var/lib/prometheus/node-exporter/durability_snapshots.prom
  durability snapshots --forget s3-customers/c1042  stop expecting a removed set
  durability snapshots ack web-restic               accept a deliberately replaced repository
"""

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --format, --output, --source, --now and --forget."""
    add_check_arguments(parser)
    parser.add_argument(
        "--source",
        metavar="NAME",
        action="append",
        default=[],
        help="check only this source (repeatable; default: every source)",
    )
    parser.add_argument(
        "--now",
        metavar="ISO-8601",
        help="judge ages as if it were this time (UTC if no offset given)",
    )
    parser.add_argument(
        "--forget",
        metavar="SOURCE[/SET]",
        action="append",
        default=[],
        help="forget a set (or every set of a source) that was removed on purpose, so "
        "its absence is no longer CRITICAL; then run the check",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    ack = actions.add_parser(
        "ack",
        help="accept the repository now found under a restic source as its own "
        "(after a deliberate move or re-creation)",
        description="Record the id of the restic repository now at SOURCE's location as "
        "the expected one, so that `repository replaced` is no longer CRITICAL. The "
        "snapshots and the last `restic check` of the old repository are forgotten.",
    )
    ack.add_argument("ack_source", metavar="SOURCE", help="the restic source's name")


def build_source(
    settings: SourceSettings, defaults: SnapshotSettings, check_due: bool = False
) -> SnapshotSource:
    """Given one configured source, return the gatherer of its kind.

    `check_due` asks a restic source to run `restic check` this time.
    """
    policy = resolve_policy(settings, defaults)
    if settings.kind == "s3":
        from durability.snapshots.s3 import S3Source

        return S3Source(settings, policy)
    if settings.kind == "ebs":
        from durability.snapshots.ebs import EbsSource

        return EbsSource(settings, policy)
    if settings.kind == "aws-backup":
        from durability.snapshots.awsbackup import AwsBackupSource

        return AwsBackupSource(settings, policy)
    if settings.kind == "restic":
        from durability.snapshots.resticrepo import ResticSource

        return ResticSource(settings, policy, binary=defaults.restic, check_due=check_due)
    raise DurabilityError(f"source {settings.name!r}: unknown kind {settings.kind!r}")


@dataclass(frozen=True)
class Gathered:
    """What one source gave: a listing, or why there is none."""

    settings: SourceSettings
    policy: Policy
    listing: Listing | None
    error: str | None = None
    damaged: bool = False


def gather_one(
    settings: SourceSettings, defaults: SnapshotSettings, now: datetime, check_due: bool = False
) -> Gathered:
    """Gather one source; any failure becomes the reason of an UNKNOWN, never a traceback.

    A repository that says its own data is damaged is the exception: CRITICAL.
    """
    from durability.snapshots.resticrepo import DamagedRepository

    policy = resolve_policy(settings, defaults)
    try:
        source = build_source(settings, defaults, check_due)
        return Gathered(settings, policy, source.gather(now))
    except DamagedRepository as error:
        return Gathered(settings, policy, None, str(error), damaged=True)
    except DurabilityError as error:
        return Gathered(settings, policy, None, str(error))
    except ImportError as error:
        return Gathered(settings, policy, None, f"not available in this install: {error}")
    except Exception as error:  # a bug or an unforeseen answer: UNKNOWN, not a crash
        log.debug("source %s failed", settings.name, exc_info=True)
        return Gathered(settings, policy, None, f"internal error: {type(error).__name__}: {error}")


def gather_all(
    sources: Sequence[SourceSettings],
    defaults: SnapshotSettings,
    now: datetime,
    checks_due: Collection[str] = (),
) -> list[Gathered]:
    """Gather every source, `defaults.concurrency` at once; results in config order.

    Restic sources named in `checks_due` also run `restic check`.
    """
    workers = max(1, min(defaults.concurrency, len(sources)))
    if workers == 1:
        return [gather_one(s, defaults, now, s.name in checks_due) for s in sources]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="snapshots") as pool:
        return list(
            pool.map(lambda s: gather_one(s, defaults, now, s.name in checks_due), sources)
        )


def select_sources(defaults: SnapshotSettings, names: Sequence[str]) -> tuple[SourceSettings, ...]:
    """Return the configured sources, or only the named ones. Raise DurabilityError."""
    if not names:
        return defaults.sources
    known = {s.name: s for s in defaults.sources}
    missing = [n for n in names if n not in known]
    if missing:
        raise DurabilityError(
            f"no such snapshot source: {', '.join(missing)} (configured: "
            f"{', '.join(known) or 'none'})"
        )
    return tuple(known[n] for n in names)


def run_snapshots(ctx: Context, names: Sequence[str] = (), forget: Sequence[str] = ()) -> Report:
    """Gather, evaluate and remember every (selected) source; return the report."""
    defaults = ctx.config().snapshots
    sources = select_sources(defaults, names)
    if not sources:
        return unknown_report(
            CHECK,
            "no snapshot sources configured ([[snapshots.sources]]): " + ctx.config().origin,
            ctx.now,
        )
    now = ctx.now
    notes: list[str] = []
    store = _open_store(ctx, notes)
    if store is not None and forget:
        from durability.snapshots.history import forget as forget_sets

        for target in forget:
            try:
                dropped = forget_sets(store, target)
            except StateError as error:
                notes.append(f"could not forget {target}: {error}")
                continue
            notes.append(f"forgot {dropped} set(s) of {target}")
    results: list[Result] = []
    max_ages: dict[str, float] = {}
    due = _checks_due(store, sources, defaults, now, notes)
    for gathered in gather_all(sources, defaults, now, due):
        name = gathered.settings.name
        max_ages[name] = gathered.policy.max_age
        if gathered.listing is None:
            failed = evaluate_failure(name, gathered.settings.kind, gathered.error or "?")
            if gathered.damaged:
                failed = replace(
                    failed, status=Status.CRITICAL,
                    summary=f"repository damaged: {gathered.error}",
                )
            results.append(failed)
            continue
        listing = gathered.listing
        if gathered.settings.kind == "restic":
            from durability.snapshots.resticstate import judge_repository

            listing = judge_repository(store, listing, now, notes)
        known = _known_sets(store, name, now, notes)
        results.extend(evaluate_listing(listing, gathered.policy, now, known))
        _remember(store, name, listing, now, notes)
    _record_ages(store, results, max_ages, now, notes)
    return Report(check=CHECK, checked_at=now, results=tuple(results), notes=tuple(notes))


def _checks_due(
    store: Store | None,
    sources: Sequence[SourceSettings],
    defaults: SnapshotSettings,
    now: datetime,
    notes: list[str],
) -> set[str]:
    """Return the restic sources whose `restic check` is due this run."""
    if not defaults.restic_check:
        return set()
    restic = [s for s in sources if s.kind == "restic"]
    if not restic:
        return set()
    from durability.snapshots.resticstate import check_due

    due = set()
    for source in restic:
        every = source.restic_check_every or defaults.restic_check_every
        try:
            if check_due(store, source.name, now, every):
                due.add(source.name)
        except StateError as error:
            notes.append(f"history unreadable for {source.name}: {error}")
            due.add(source.name)
    return due


def _open_store(ctx: Context, notes: list[str]) -> Store | None:
    try:
        return ctx.store()
    except StateError as error:
        notes.append(f"history unavailable, vanished sets not detected: {error}")
        return None


def _known_sets(store: Store | None, source: str, now: datetime, notes: list[str]) -> set[str]:
    if store is None:
        return set()
    from durability.snapshots.history import known_sets

    try:
        return known_sets(store, source, now)
    except StateError as error:
        notes.append(f"history unreadable for {source}: {error}")
        return set()


def _remember(
    store: Store | None, source: str, listing: Listing, now: datetime, notes: list[str]
) -> None:
    if store is None:
        return
    from durability.snapshots.history import remember_sets

    try:
        remember_sets(store, source, listing.sets, now)
    except StateError as error:
        notes.append(f"history not recorded for {source}: {error}")


def _record_ages(
    store: Store | None, results: Sequence[Result], max_ages: dict[str, float],
    now: datetime, notes: list[str],
) -> None:
    if store is None or not results:
        return
    from durability.snapshots.history import record_source_runs, source_runs

    try:
        record_source_runs(store, source_runs(results, now, max_ages))
    except StateError as error:
        notes.append(f"snapshot ages not recorded: {error}")


def run_check(ctx: Context) -> Report:
    """Return the snapshots report of every configured source (for `durability check`)."""
    return run_snapshots(ctx)


def parse_now(text: str) -> datetime:
    """Given an ISO-8601 time, return it as aware UTC (naive means UTC). Raise DurabilityError."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise DurabilityError(f"--now: not an ISO-8601 time: {text!r}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def acknowledge(ctx: Context, name: str) -> str:
    """Record the repository id now found under restic source `name`; return what was done.

    Raise DurabilityError if the source is not a restic one, or its id cannot be read.
    """
    from durability.snapshots.history import acknowledge as record
    from durability.snapshots.resticrepo import ResticSource

    defaults = ctx.config().snapshots
    [settings] = select_sources(defaults, [name])
    if settings.kind != "restic":
        raise DurabilityError(f"source {name} is of kind {settings.kind}; only restic "
                              "sources have a repository id to acknowledge")
    source = ResticSource(settings, resolve_policy(settings, defaults), binary=defaults.restic)
    from durability.restic import ResticError

    try:
        identity = source.restic().repository_id()
    except ResticError as error:
        raise DurabilityError(f"cannot read the repository id of {name}: {error}") from error
    try:
        previous = record(ctx.store(), name, identity, ctx.now)
    except StateError as error:
        raise DurabilityError(f"cannot record the repository id of {name}: {error}") from error
    if previous is None or previous == identity:
        return f"{name}: repository id {identity[:8]} recorded"
    return f"{name}: repository id {identity[:8]} acknowledged (replaces {previous[:8]})"


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Run the check, print the report in the chosen format, record it, return the exit code."""
    if getattr(args, "action", None) == "ack":
        print(acknowledge(ctx, args.ack_source))
        return 0
    if args.now:
        ctx.now = parse_now(args.now)
    report = run_snapshots(ctx, args.source, args.forget)
    if report.results and report.summary_override is None:
        report = record_report(ctx, report)
    return emit_report(report, args)

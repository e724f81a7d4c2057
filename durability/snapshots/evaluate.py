"""The SPEC rules for snapshots, pure: records, policy and `now` in, results out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from durability.config.snapshots import SnapshotSettings, SourceSettings
from durability.model import Metric, Result, Status, isoformat_z, worst
from durability.snapshots.records import BackupSet, Listing, Snapshot
from durability.units import OFF, format_bytes, format_duration

CHECK = "snapshots"
# A snapshot dated further ahead than this is suspicious and never counts as fresh.
FUTURE_TOLERANCE = timedelta(minutes=5)
# Beyond this many sets in one source, metrics leave the Nagios perfdata line.
PERFDATA_SETS = 20


@dataclass(frozen=True)
class Policy:
    """The rules one source is judged by, defaults already applied."""

    max_age: float = 26 * 3600.0
    grace: float = 26 * 3600.0 / 4
    min_count: int = 1
    max_shrink: float | None = 0.5
    require_encrypted: bool = False
    require_immutable: bool = False


def resolve_policy(source: SourceSettings, defaults: SnapshotSettings) -> Policy:
    """Given a source and the `[snapshots]` defaults, return its effective policy.

    `grace` defaults to a quarter of the effective `max_age`.
    """
    max_age = source.max_age if source.max_age is not None else defaults.max_age
    grace = source.grace if source.grace is not None else defaults.grace
    return Policy(
        max_age=max_age,
        grace=grace if grace is not None else max_age / 4,
        min_count=source.min_count if source.min_count is not None else defaults.min_count,
        max_shrink=_shrink_limit(
            source.max_shrink if source.max_shrink is not None else defaults.max_shrink
        ),
        require_encrypted=(
            source.require_encrypted
            if source.require_encrypted is not None
            else defaults.require_encrypted
        ),
        require_immutable=(
            source.require_immutable
            if source.require_immutable is not None
            else defaults.require_immutable
        ),
    )


def _shrink_limit(value: float | None) -> float | None:
    """Return the shrink limit of a policy: None when the check is off."""
    return None if value is None or value == OFF else value


def target_name(source: str, set_name: str) -> str:
    """Return the result target of one set: SOURCE/SET, or SOURCE for a one-set source."""
    return f"{source}/{set_name}" if set_name else source


def _ago(seconds: float) -> str:
    return (
        f"{format_duration(seconds)} ago" if seconds >= 0 else f"{format_duration(-seconds)} ahead"
    )


def _describe_incomplete(items: Iterable[Snapshot]) -> str:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.state] = counts.get(item.state, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def evaluate_set(
    source: str,
    backup_set: BackupSet,
    listing: Listing,
    policy: Policy,
    now: datetime,
    *,
    perfdata: bool = True,
) -> Result:
    """Given one set's snapshots, its source's facts, the policy and now, return its verdict."""
    problems: list[tuple[Status, str]] = []
    details: list[str] = []
    target = target_name(source, backup_set.name)
    limit = now + FUTURE_TOLERANCE
    future = [s for s in backup_set.snapshots if s.time > limit]
    usable = [s for s in backup_set.snapshots if s.time <= limit]
    count = backup_set.count - len(future)
    newest = usable[-1] if usable else None
    previous = usable[-2] if len(usable) >= 2 else None
    data: dict[str, Any] = {
        "source": source,
        "set": backup_set.name,
        "kind": listing.kind,
        "newest_at": isoformat_z(newest.time) if newest else None,
        "newest_id": newest.id if newest else None,
        "age_seconds": (now - newest.time).total_seconds() if newest else None,
        "count": count,
        "newest_size_bytes": newest.size_bytes if newest else None,
        "previous_size_bytes": previous.size_bytes if previous else None,
        "incomplete": [
            {"id": s.id, "state": s.state, "time": isoformat_z(s.time), "progress": s.progress}
            for s in backup_set.incomplete
        ],
        "future_dated": [{"id": s.id, "time": isoformat_z(s.time)} for s in future],
        **dict(listing.facts),
        **dict(backup_set.facts),
    }
    for reason in listing.critical:
        problems.append((Status.CRITICAL, reason))
    if backup_set.damaged:
        shown = ", ".join(ident[:8] for ident in backup_set.damaged)
        problems.append(
            (
                Status.CRITICAL,
                f"damaged snapshot{'s' if len(backup_set.damaged) > 1 else ''} {shown}: "
                "restic cannot read it (data loss; not counted)",
            )
        )
        data["damaged_snapshots"] = list(backup_set.damaged)
    if future:
        problems.append(
            (
                Status.WARNING,
                f"{len(future)} snapshot{'s' if len(future) > 1 else ''} dated in the future "
                f"(newest {isoformat_z(future[-1].time)}), not counted as fresh",
            )
        )
    if newest is None:
        if backup_set.incomplete:
            what = f"only incomplete snapshots ({_describe_incomplete(backup_set.incomplete)})"
        elif future:
            what = "no snapshot dated in the past"
        else:
            what = "no snapshot at all"
        problems.append((Status.CRITICAL, what))
    else:
        age = (now - newest.time).total_seconds()
        when = f"newest {_ago(age)} ({isoformat_z(newest.time)})"
        if age > policy.max_age + policy.grace:
            problems.append(
                (
                    Status.CRITICAL,
                    f"stale: {when}, limit {format_duration(policy.max_age)}",
                )
            )
        elif age > policy.max_age:
            problems.append(
                (
                    Status.WARNING,
                    f"late: {when}, limit {format_duration(policy.max_age)} "
                    f"(+{format_duration(policy.grace)} grace)",
                )
            )
        else:
            details.append(f"newest snapshot {newest.id} at {isoformat_z(newest.time)}")
        if backup_set.incomplete:
            details.append(
                "newer than the newest complete snapshot: "
                + _describe_incomplete(backup_set.incomplete)
            )
            failed = [s for s in backup_set.incomplete if s.state not in ("pending", "creating")]
            if failed:
                details.append(
                    f"latest attempt {failed[-1].state} at {isoformat_z(failed[-1].time)}"
                )
    if newest is not None and count < policy.min_count:
        problems.append(
            (
                Status.WARNING,
                f"only {count} snapshot{'s' if count != 1 else ''}, "
                f"at least {policy.min_count} wanted",
            )
        )
    if (
        policy.max_shrink is not None
        and newest is not None
        and previous is not None
        and newest.size_bytes is not None
        and previous.size_bytes
    ):
        shrink = 1 - newest.size_bytes / previous.size_bytes
        data["shrink_ratio"] = round(shrink, 6)
        if shrink > policy.max_shrink and newest.size_bytes > 0:
            problems.append(
                (
                    Status.WARNING,
                    f"shrank {shrink:.0%} ({format_bytes(previous.size_bytes)} -> "
                    f"{format_bytes(newest.size_bytes)}), limit {policy.max_shrink:.0%}",
                )
            )
    if newest is not None and newest.size_bytes == 0:
        was = (
            f" (previous {format_bytes(previous.size_bytes)})"
            if previous is not None and previous.size_bytes
            else ""
        )
        problems.append((Status.WARNING, f"newest snapshot holds no data{was}"))
    if policy.require_encrypted and newest is not None:
        encrypted = newest.encrypted if newest.encrypted is not None else listing.encrypted
        data["encrypted"] = encrypted
        if encrypted is False:
            problems.append((Status.WARNING, "newest snapshot is not encrypted"))
        elif encrypted is None:
            problems.append((Status.WARNING, "cannot confirm encryption (provider does not say)"))
    if policy.require_immutable:
        data["immutable"] = listing.immutable
        if listing.immutable is False:
            problems.append((Status.WARNING, f"not immutable: {listing.immutable_detail}"))
        elif listing.immutable is None:
            problems.append(
                (Status.WARNING, f"cannot confirm immutability: {listing.immutable_detail}")
            )
    status = worst(s for s, _ in problems)
    ordered = sorted(problems, key=lambda p: -p[0].rank)
    if ordered:
        summary = "; ".join(text for _, text in ordered)
    else:
        assert newest is not None
        size = (
            f", newest {format_bytes(newest.size_bytes)}" if newest.size_bytes is not None else ""
        )
        plural = "s" if count != 1 else ""
        ago = _ago((now - newest.time).total_seconds())
        summary = f"newest {ago}, {count} snapshot{plural}{size}"
    # The summary holds every problem; details list them one a line only when several.
    listed = [text for _, text in ordered] if len(ordered) > 1 else []
    details = listed + details + list(listing.notes)
    return Result(
        check=CHECK,
        target=target,
        status=status,
        summary=summary,
        details=tuple(details),
        data=data,
        metrics=_metrics(source, data, policy, perfdata),
    )


def _metrics(
    source: str, data: dict[str, Any], policy: Policy, perfdata: bool
) -> tuple[Metric, ...]:
    labels = {"source": source}
    metrics = [
        Metric(
            "snapshot_count",
            float(data["count"]),
            help="Complete snapshots of the set.",
            labels=labels,
            uom="",
            perfdata=perfdata,
        ),
    ]
    if data["age_seconds"] is not None:
        metrics.insert(
            0,
            Metric(
                "snapshot_age_seconds",
                float(data["age_seconds"]),
                help="Age of the newest complete snapshot.",
                labels=labels,
                uom="s",
                warn=f"{policy.max_age:g}",
                crit=f"{policy.max_age + policy.grace:g}",
                minimum=0,
                perfdata=perfdata,
            ),
        )
    if data["newest_size_bytes"] is not None:
        metrics.append(
            Metric(
                "snapshot_newest_size_bytes",
                float(data["newest_size_bytes"]),
                help="Restore size of the newest complete snapshot.",
                labels=labels,
                uom="B",
                perfdata=perfdata,
            )
        )
    return tuple(metrics)


def evaluate_listing(
    listing: Listing, policy: Policy, now: datetime, known_sets: Iterable[str] = ()
) -> list[Result]:
    """Given what one source reported, its policy and now, return one result per set.

    A set seen in an earlier run (`known_sets`) and gone now is CRITICAL; a source with
    no set at all is CRITICAL; source-wide problems (a stale lock) are one WARNING.
    """
    perfdata = len(listing.sets) <= PERFDATA_SETS
    results = [
        evaluate_set(listing.source, backup_set, listing, policy, now, perfdata=perfdata)
        for _, backup_set in sorted(listing.sets.items())
    ]
    vanished = sorted(set(known_sets) - set(listing.sets))
    for name in vanished:
        results.append(
            Result(
                check=CHECK,
                target=target_name(listing.source, name),
                status=Status.CRITICAL,
                summary="vanished: this set had snapshots in an earlier run and has none now",
                data={
                    "source": listing.source,
                    "set": name,
                    "kind": listing.kind,
                    "count": 0,
                    "newest_at": None,
                    "age_seconds": None,
                    "newest_size_bytes": None,
                    "previous_size_bytes": None,
                },
                metrics=(
                    Metric(
                        "snapshot_count", 0.0, labels={"source": listing.source}, perfdata=perfdata
                    ),
                ),
            )
        )
    if not results:
        results.append(
            Result(
                check=CHECK,
                target=listing.source,
                status=Status.CRITICAL,
                summary="; ".join(("no snapshot at all", *listing.critical)),
                details=tuple(listing.notes),
                data={
                    "source": listing.source,
                    "kind": listing.kind,
                    "count": 0,
                    "newest_at": None,
                    "age_seconds": None,
                    "newest_size_bytes": None,
                    "previous_size_bytes": None,
                    **dict(listing.facts),
                },
                metrics=(Metric("snapshot_count", 0.0, labels={"source": listing.source}),),
            )
        )
    if listing.problems:
        results.append(
            Result(
                check=CHECK,
                target=target_name(listing.source, "locks"),
                status=Status.WARNING,
                summary="; ".join(listing.problems),
                details=tuple(listing.problems) if len(listing.problems) > 1 else (),
                data={"source": listing.source, "kind": listing.kind, **dict(listing.facts)},
            )
        )
    return results


def evaluate_failure(source: str, kind: str, reason: str) -> Result:
    """Return the UNKNOWN result of a source that could not be listed, naming the cause."""
    return Result(
        check=CHECK,
        target=source,
        status=Status.UNKNOWN,
        summary=f"cannot list snapshots: {reason}",
        data={"source": source, "kind": kind, "error": reason},
    )

"""The plain records every snapshot source returns, and the protocol they implement."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Snapshot:
    """One backup of one set, as the provider reports it.

    `complete` is the provider's own verdict (restic: always; EBS: state completed;
    AWS Backup: status COMPLETED). `size_bytes` is the restore size where known.
    `encrypted` is None where the provider does not say.
    """

    id: str
    time: datetime
    complete: bool = True
    state: str = "completed"
    size_bytes: int | None = None
    encrypted: bool | None = None
    progress: float | None = None
    objects: int | None = None


@dataclass(frozen=True)
class BackupSet:
    """What was gathered about one backup set: its newest snapshots and its counts.

    To keep memory bounded by the number of sets, a source may keep only the newest
    complete snapshots (`snapshots`, oldest first) and count the rest: `count` is the
    number of complete snapshots, `incomplete` lists the pending or failed ones newer
    than the newest complete one (all of them when there is none).
    """

    name: str
    snapshots: tuple[Snapshot, ...] = ()
    count: int = 0
    incomplete: tuple[Snapshot, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)
    # restic: the ids of every snapshot of the set, and of damaged ones known to be its.
    ids: tuple[str, ...] = ()
    damaged: tuple[str, ...] = ()


def backup_set(name: str, snapshots: list[Snapshot], facts: Mapping[str, Any]) -> BackupSet:
    """Given every snapshot of one set (any order), return the set as evaluation needs it:
    the two newest complete ones, their count, and the incomplete ones newer than them."""
    snapshots = sorted(snapshots, key=lambda s: s.time)
    complete = [s for s in snapshots if s.complete]
    newest_time = complete[-1].time if complete else None
    incomplete = tuple(
        s for s in snapshots if not s.complete and (newest_time is None or s.time > newest_time)
    )
    return BackupSet(
        name=name,
        snapshots=tuple(complete[-2:]),
        count=len(complete),
        incomplete=incomplete,
        facts=facts,
    )


@dataclass(frozen=True)
class Listing:
    """Everything gathered from one source in one run.

    `sets` maps each set name to what was found ("" for a source that is one set).
    `immutable`/`encrypted` are source-wide facts (None: the provider does not say),
    with `immutable_detail` saying why. `problems` are source-wide findings that are
    WARNINGs by themselves (a stale lock), `notes` are facts shown as details.
    `critical` are source-wide findings that make every set CRITICAL (the repository
    replaced, damage found by `restic check`, a damaged snapshot of unknown set).
    `damaged` are ids of snapshots the provider lists as unreadable, not yet placed in
    a set; `identity` is the repository's own id where it has one (restic).
    """

    source: str
    kind: str
    sets: Mapping[str, BackupSet]
    immutable: bool | None = None
    immutable_detail: str = ""
    encrypted: bool | None = None
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)
    critical: tuple[str, ...] = ()
    damaged: tuple[str, ...] = ()
    identity: str | None = None


class SnapshotSource(Protocol):
    """One configured source of snapshots (S3, EBS, AWS Backup, restic)."""

    name: str

    def gather(self, now: datetime) -> Listing:
        """Return what the provider reports. Raise DurabilityError if it cannot be listed."""
        ...

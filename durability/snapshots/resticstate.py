"""What a restic repository's history adds to its listing: identity, damage, checks.

- The repository's id (`restic cat config`) is recorded per source; a different id
  under the same name is CRITICAL "repository replaced" until `durability snapshots
  ack SOURCE`.
- A snapshot file restic cannot read is CRITICAL for the set it was seen in before
  (each snapshot id is remembered with its set), else for the whole source.
- `restic check` (index and trees, not pack data) runs when the last clean one is older
  than `restic_check_every`; damage it finds stays CRITICAL until a check is clean.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from durability.errors import StateError
from durability.snapshots import history
from durability.snapshots.records import BackupSet, Listing

if TYPE_CHECKING:
    from durability.state.store import Store


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def check_due(store: Store | None, source: str, now: datetime, every: float) -> bool:
    """Return True when `restic check` should run for `source` now.

    Due with no history, after a check that found damage or could not decide, and when
    the last clean check is older than `every` seconds.
    """
    if store is None:
        return True
    last = history.last_check(store, source)
    if last is None or last.outcome != "clean" or last.clean_at is None:
        return True
    return (now - _parse(last.clean_at)).total_seconds() >= every


def judge_repository(
    store: Store | None, listing: Listing, now: datetime, notes: list[str]
) -> Listing:
    """Given a restic listing, return it with what history says added to it.

    Source-wide CRITICAL reasons go to `critical`; damaged snapshots go to their set.
    A store that cannot be read or written adds a note and judges from this run alone.
    """
    source = listing.source
    critical = list(listing.critical)
    facts: dict[str, Any] = dict(listing.facts)
    check = facts.get("check")
    try:
        if store is not None and listing.identity:
            replaced = history.check_identity(store, source, listing.identity, now)
            if replaced:
                critical.append(replaced)
        critical.extend(_judge_check(store, source, check, now, facts))
        placed = history.place_snapshots(store, source, listing.damaged) if store else {}
        if store is not None:
            history.remember_snapshots(
                store, source, {name: s.ids for name, s in listing.sets.items()}
            )
    except StateError as error:
        notes.append(f"restic history unavailable for {source}: {error}")
        placed = {}
        if isinstance(check, dict) and check.get("outcome") == "damaged":
            critical.append(f"restic check found damage: {check.get('reason')}")
    sets = dict(listing.sets)
    for ident, name in placed.items():
        current = sets.get(name) or BackupSet(name=name)
        sets[name] = BackupSet(
            name=current.name,
            snapshots=current.snapshots,
            count=current.count,
            incomplete=current.incomplete,
            facts=current.facts,
            ids=current.ids,
            damaged=(*current.damaged, ident),
        )
    unplaced = [ident for ident in listing.damaged if ident not in placed]
    if unplaced:
        shown = ", ".join(ident[:8] for ident in unplaced)
        critical.append(
            f"damaged snapshot{'s' if len(unplaced) > 1 else ''} {shown}: restic cannot read "
            "it and its set is unknown (data loss)"
        )
        facts["damaged_snapshots"] = [ident[:8] for ident in unplaced]
    extra: tuple[str, ...] = ()
    if isinstance(check, dict) and check.get("outcome") == "not run":
        extra = (f"restic check due but not run: {check.get('reason')}",)
    return _with(
        listing, sets=sets, critical=tuple(critical), facts=facts, notes=(*listing.notes, *extra)
    )


def _judge_check(
    store: Store | None, source: str, check: Any, now: datetime, facts: dict[str, Any]
) -> list[str]:
    """Record this run's `restic check`, if one ran; return the CRITICAL reasons."""
    if isinstance(check, dict) and check.get("outcome") in ("clean", "damaged"):
        if store is not None:
            history.record_check(store, source, now, str(check["outcome"]), str(check["reason"]))
        if check["outcome"] == "damaged":
            return [f"restic check found damage: {check['reason']}"]
        return []
    last = history.last_check(store, source) if store is not None else None
    if last is not None:
        facts["check"] = {
            **(check if isinstance(check, dict) else {}),
            "last_checked_at": last.checked_at,
            "last_outcome": last.outcome,
            "last_clean_at": last.clean_at,
        }
        if last.outcome == "damaged":
            why = f"; could not check again: {check['reason']}" if isinstance(check, dict) else ""
            return [f"restic check at {last.checked_at} found damage: {last.reason}{why}"]
    return []


def _with(listing: Listing, **changes: Any) -> Listing:
    from dataclasses import replace

    return replace(listing, **changes)


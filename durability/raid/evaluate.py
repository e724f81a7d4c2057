"""Judge md arrays per the severity table of docs/reference.md (pure: facts, policy, now in)."""

from __future__ import annotations

from datetime import datetime

from durability.model import Metric, Result, Status, worst
from durability.raid.facts import ArrayFacts, MemberFacts
from durability.records import Record, field
from durability.units import format_bytes, format_duration

TYPE_CHECKING = False  # typing costs the cron job more than the check
if TYPE_CHECKING:
    from typing import Any

CHECK = "raid"
NO_REDUNDANCY_LEVELS = ("raid0", "linear")
REBUILD_ACTIONS = ("recover", "resync", "reshape")
SCRUB_ACTIONS = ("check", "repair")


class RaidPolicy(Record):
    """How strictly arrays are judged (from `[raid]` and `--expect`)."""

    strict_rebuild: bool = False
    stall_after: float = 1800.0
    scrub_max_age: float = 35 * 86400.0
    expect: dict[str, int | None] = field(factory=dict)


class ArrayHistory(Record):
    """What earlier runs recorded about one array."""

    first_seen: datetime
    progress_key: str | None = None  # "action:done" of the last observation
    progress_changed_at: datetime | None = None
    last_scrub_at: datetime | None = None
    inventory_spares: int | None = None
    inventory_serials: tuple[str, ...] = ()
    acked_errors: dict[str, int] = field(factory=dict)
    acked_mismatch: int | None = None


def progress_key(facts: ArrayFacts) -> str | None:
    """Return what must change while a sync progresses (None when none runs)."""
    if not facts.sync_running:
        return None
    return f"{facts.sync_action}:{facts.sync_state}:{facts.sync_done_sectors}"


def hot_spares(facts: ArrayFacts) -> list[MemberFacts]:
    """Return members waiting as hot spares (not the target of a running recovery)."""
    rebuilding = facts.sync_running and facts.sync_action in REBUILD_ACTIONS
    return [
        m
        for m in facts.members
        if "spare" in m.state
        and "faulty" not in m.state
        and not (rebuilding and (m.slot is not None or m.rebuild_target))
    ]


def redundancy_left(facts: ArrayFacts) -> int | None:
    """Return how many more member failures the array survives now (None: unknown)."""
    level = facts.level or ""
    raid_disks = facts.raid_disks
    missing = facts.degraded
    if missing is None and raid_disks is not None:
        missing = max(0, raid_disks - facts.in_sync)
    if level in ("raid1", "multipath"):
        return facts.in_sync - 1
    if level in ("raid4", "raid5"):
        return None if missing is None else 1 - missing
    if level == "raid6":
        return None if missing is None else 2 - missing
    if level == "raid10":
        copies = facts.copies or 2
        # Conservative: assume every missing member comes from the same mirror group.
        return None if missing is None else copies - 1 - missing
    if level in NO_REDUNDANCY_LEVELS:
        return 0
    return None


def _copies_word(facts: ArrayFacts) -> str:
    return "mirrors" if facts.level in ("raid1", "multipath") else "devices"


def _in_sync_text(facts: ArrayFacts) -> str:
    total = facts.raid_disks if facts.raid_disks is not None else len(facts.members)
    return f"{facts.in_sync} of {total} {_copies_word(facts)} in sync"


def _progress_text(facts: ArrayFacts) -> str:
    parts = []
    progress = facts.sync_progress
    if progress is not None:
        parts.append(f"{progress * 100:.1f}% done")
    if facts.sync_speed_kib:
        parts.append(f"{format_bytes(facts.sync_speed_kib * 1024)}/s")
    eta = facts.sync_eta_seconds
    if eta is not None:
        parts.append(f"ETA {format_duration(eta)}")
    return ", ".join(parts)


def _sync_text(facts: ArrayFacts) -> str:
    """Return how the sync stands: running with progress, queued, or on another node."""
    state = facts.sync_state
    if state in ("PENDING", "DELAYED"):
        return f"queued ({state.lower()}, behind another array on the same disks)"
    if state == "REMOTE":
        return "running on another cluster node"
    progress = _progress_text(facts)
    return f"running ({progress})" if progress else "running"


def evaluate_array(
    facts: ArrayFacts,
    policy: RaidPolicy,
    history: ArrayHistory | None,
    now: datetime,
) -> Result:
    """Given one array's facts, the policy, its history and now, return its verdict."""
    findings: list[tuple[Status, str]] = []
    oks: list[str] = []

    def add(status: Status, message: str) -> None:
        findings.append((status, message))

    level = facts.level or "unknown level"
    state = facts.array_state or "unknown"
    left = redundancy_left(facts)
    rebuilding = facts.sync_running and facts.sync_action in REBUILD_ACTIONS
    stalled_for = _stalled_for(facts, history, now)

    if state in ("inactive", "clear", "broken", "suspended") or (
        not facts.members and state != "clean"
    ):
        present = len(facts.members)
        add(
            Status.CRITICAL,
            f"{state}: array not running ({present} member{'s' if present != 1 else ''} present)",
        )
    elif (facts.degraded or 0) > 0 or (left is not None and left < _full_redundancy(facts)):
        if facts.sync_action == "reshape" and left is not None and left <= 0:
            # md recovers nothing while a reshape runs: one more failure loses data.
            add(
                Status.CRITICAL,
                f"degraded: {_in_sync_text(facts)}, no redundancy left and a reshape "
                f"{_sync_text(facts)}: nothing is rebuilt until it ends",
            )
        elif rebuilding:
            _judge_rebuild(facts, policy, stalled_for, add)
        elif left is not None and left <= 0:
            add(Status.CRITICAL, f"degraded: {_in_sync_text(facts)}, no rebuild running")
        else:
            add(Status.WARNING, f"degraded: {_in_sync_text(facts)}, redundancy left")
    elif facts.sync_running:
        if facts.sync_action in SCRUB_ACTIONS:
            oks.append(f"{facts.sync_action} scrub {_sync_text(facts)}")
        elif facts.sync_state in ("PENDING", "DELAYED"):
            add(Status.WARNING, f"{facts.sync_action} {facts.sync_state.lower()}: not started yet")
        elif facts.sync_action == "reshape" or rebuilding:
            _judge_rebuild(facts, policy, stalled_for, add)

    if facts.level in NO_REDUNDANCY_LEVELS:
        oks.append("no redundancy")

    for member in facts.members:
        _judge_member(facts, member, left, history, add, oks)

    if state not in ("inactive", "clear", "broken"):
        faulty = [m.device for m in facts.members if "faulty" in m.state]
        if faulty and not findings_with(findings, Status.CRITICAL):
            add(Status.WARNING, f"faulty member {', '.join(faulty)} still attached")
        _judge_mismatch(facts, history, add)
        if facts.read_only == "read-only":
            add(Status.WARNING, "read-only")
        elif facts.read_only == "auto-read-only":
            oks.append("auto-read-only (switches to read-write on first write)")
        spares = hot_spares(facts)
        if spares:
            oks.append(f"hot spare {', '.join(m.device for m in spares)}")
        _judge_inventory(facts, spares, history, add)
        _judge_scrub(facts, policy, history, now, add)

    expected = policy.expect.get(facts.name)
    if expected is not None and facts.raid_disks is not None and facts.raid_disks != expected:
        add(Status.WARNING, f"expected {expected} active slots, has {facts.raid_disks}")

    status = worst(s for s, _ in findings)
    if findings:
        ordered = sorted(findings, key=lambda f: -f[0].rank)
        summary = ordered[0][1]
        if len(ordered) > 1:
            summary += f" (+{len(ordered) - 1} more)"
    else:
        head = f"{level} {state}" if facts.level else state
        summary = f"{head}: {_in_sync_text(facts)}"
        if oks:
            summary += "; " + "; ".join(oks)
    details = (
        [f"{s.name}: {m}" for s, m in sorted(findings, key=lambda f: -f[0].rank)]
        if len(findings) > 1
        else []
    )
    details.extend(f"OK: {m}" for m in oks if findings)
    details.extend(_member_lines(facts))
    details.extend(facts.notes)
    return Result(
        check=CHECK,
        target=facts.name,
        status=status,
        summary=summary,
        details=tuple(details),
        data=array_data(facts),
        metrics=array_metrics(facts),
    )


def findings_with(findings: list[tuple[Status, str]], status: Status) -> bool:
    """Return True when any finding has the given status."""
    return any(s is status for s, _ in findings)


def _full_redundancy(facts: ArrayFacts) -> int:
    level = facts.level or ""
    if level in ("raid1", "multipath"):
        return (facts.raid_disks or 1) - 1
    if level in ("raid4", "raid5"):
        return 1
    if level == "raid6":
        return 2
    if level == "raid10":
        return (facts.copies or 2) - 1
    return 0


def _stalled_for(facts: ArrayFacts, history: ArrayHistory | None, now: datetime) -> float | None:
    if history is None or history.progress_changed_at is None:
        return None
    if history.progress_key != progress_key(facts) or progress_key(facts) is None:
        return None
    return (now - history.progress_changed_at).total_seconds()


def _judge_rebuild(
    facts: ArrayFacts,
    policy: RaidPolicy,
    stalled_for: float | None,
    add: Any,
) -> None:
    what = {"recover": "rebuilding", "resync": "resyncing", "reshape": "reshaping"}.get(
        facts.sync_action or "", "syncing"
    )
    if stalled_for is not None and stalled_for >= policy.stall_after:
        progress = facts.sync_progress
        at = f" at {progress * 100:.1f}%" if progress is not None else ""
        add(Status.CRITICAL, f"{what} stalled{at}: no progress for {format_duration(stalled_for)}")
        return
    if facts.sync_state in ("PENDING", "DELAYED"):
        progress_text = "queued (" + facts.sync_state.lower() + ")"
    elif facts.sync_state == "REMOTE":
        progress_text = "running on another cluster node"
    else:
        progress_text = _progress_text(facts)
    status = (
        Status.CRITICAL
        if policy.strict_rebuild and facts.sync_action != "reshape"
        else Status.WARNING
    )
    add(status, f"{what}: {progress_text}; {_in_sync_text(facts)}")


def _judge_member(
    facts: ArrayFacts,
    member: MemberFacts,
    left: int | None,
    history: ArrayHistory | None,
    add: Any,
    oks: list[str],
) -> None:
    name = member.device
    if "blocked" in member.state:
        add(Status.CRITICAL, f"member {name} blocked (writes held after an error)")
    if "write_error" in member.state:
        add(Status.WARNING, f"member {name} had a write error")
    if "want_replacement" in member.state:
        add(Status.WARNING, f"member {name} wants replacement")
    if member.bad_blocks:
        add(Status.WARNING, f"member {name} has {member.bad_blocks} bad-block range(s) recorded")
    acked = history.acked_errors.get(name, 0) if history is not None else 0
    if member.errors is not None and member.errors > acked:
        since = f" (acknowledged: {acked})" if acked else ""
        add(Status.WARNING, f"member {name} has {member.errors} read error(s) corrected{since}")
    if "write_mostly" in member.state:
        oks.append(f"write-mostly member {name}")
    smart = member.smart
    if smart is not None and smart.passed is False:
        last_copy = member.in_sync and left is not None and left <= 0
        status = Status.CRITICAL if last_copy else Status.WARNING
        disk = smart.disk
        suffix = " on the last in-sync mirror" if last_copy else ""
        add(status, f"member {name} ({disk}): {smart.reason}{suffix}")


def _judge_mismatch(facts: ArrayFacts, history: ArrayHistory | None, add: Any) -> None:
    count = facts.mismatch_cnt or 0
    if count <= 0 or facts.sync_action not in ("idle", None):
        return
    if facts.last_sync_action not in SCRUB_ACTIONS:
        return  # a count left by a resync means nothing
    acked = history.acked_mismatch if history is not None and history.acked_mismatch else 0
    if count > acked:
        add(
            Status.WARNING,
            f"mismatch_cnt {count} after the last {facts.last_sync_action} "
            "(RAID1 with swap shows harmless mismatches; `durability raid ack` once reviewed)",
        )


def _judge_inventory(
    facts: ArrayFacts, spares: list[MemberFacts], history: ArrayHistory | None, add: Any
) -> None:
    if history is None:
        return
    if history.inventory_spares is not None and len(spares) < history.inventory_spares:
        add(
            Status.WARNING,
            f"{len(spares)} hot spare(s), inventory has {history.inventory_spares}",
        )
    serials = {m.identity.serial for m in facts.members if m.identity and m.identity.serial}
    recorded = set(history.inventory_serials)
    if recorded and serials and serials != recorded:
        gone = sorted(recorded - serials)
        new = sorted(serials - recorded)
        text = "member disks changed since the inventory"
        if gone:
            text += f": gone {', '.join(gone)}"
        if new:
            text += f"{';' if gone else ':'} new {', '.join(new)}"
        add(Status.WARNING, text + " (`durability raid ack` records the new set)")


def _judge_scrub(
    facts: ArrayFacts,
    policy: RaidPolicy,
    history: ArrayHistory | None,
    now: datetime,
    add: Any,
) -> None:
    if history is None or facts.level in NO_REDUNDANCY_LEVELS or facts.level is None:
        return
    if facts.sync_running and facts.sync_action in SCRUB_ACTIONS:
        return
    if history.last_scrub_at is not None:
        age = (now - history.last_scrub_at).total_seconds()
        if age > policy.scrub_max_age:
            add(Status.WARNING, f"last completed scrub {format_duration(age)} ago")
        return
    watched = (now - history.first_seen).total_seconds()
    if watched > policy.scrub_max_age:
        add(Status.WARNING, f"no completed scrub seen in {format_duration(watched)} of history")


def _member_lines(facts: ArrayFacts) -> list[str]:
    lines = []
    for m in facts.members:
        slot = "-" if m.slot is None else str(m.slot)
        text = f"member {m.device} slot {slot}: {','.join(m.state) or 'no state'}"
        if m.errors:
            text += f", errors {m.errors}"
        ident = m.identity
        if ident is not None and (ident.serial or ident.model):
            text += f" [{' '.join(x for x in (ident.model, ident.serial) if x)}]"
        if m.smart is not None:
            text += f" SMART: {m.smart.reason}"
        lines.append(text)
    return lines


def array_data(facts: ArrayFacts) -> dict[str, Any]:
    """Return the JSON `data` of one array, as docs/reference.md fixes it."""
    members = []
    for m in facts.members:
        entry: dict[str, Any] = {
            "device": m.device,
            "slot": m.slot,
            "state": list(m.state),
            "errors": m.errors,
            "bad_blocks": m.bad_blocks,
        }
        if m.identity is not None:
            for key in ("serial", "model", "by_id"):
                value = getattr(m.identity, key)
                if value is not None:
                    entry[key] = value
        if m.smart is not None:
            entry["smart"] = {"passed": m.smart.passed, "reason": m.smart.reason}
        members.append(entry)
    eta = facts.sync_eta_seconds
    return {
        "level": facts.level,
        "array_state": facts.array_state,
        "raid_disks": facts.raid_disks,
        "in_sync": facts.in_sync,
        "degraded": facts.degraded,
        "sync_action": facts.sync_action,
        "sync_state": facts.sync_state,
        "sync_progress": None if facts.sync_progress is None else round(facts.sync_progress, 4),
        "sync_eta_seconds": None if eta is None else round(eta),
        "sync_speed_bytes_per_second": None
        if not facts.sync_speed_kib
        else facts.sync_speed_kib * 1024,
        "last_sync_action": facts.last_sync_action,
        "mismatch_cnt": facts.mismatch_cnt,
        "read_only": facts.read_only,
        "redundancy_left": redundancy_left(facts),
        "uuid": facts.uuid,
        "sources": list(facts.sources),
        "members": members,
    }


def array_metrics(facts: ArrayFacts) -> tuple[Metric, ...]:
    """Return the gauges of one array, in base units."""
    metrics = [
        Metric(
            "raid_members_in_sync",
            facts.in_sync,
            "Members holding a complete copy.",
            minimum=0,
            maximum=facts.raid_disks,
        ),
        Metric(
            "raid_degraded_devices",
            float(facts.degraded or 0),
            "Missing members as the kernel counts them.",
            minimum=0,
        ),
    ]
    if facts.raid_disks is not None:
        metrics.append(
            Metric("raid_disks", facts.raid_disks, "Active slots of the array.", perfdata=False)
        )
    if facts.sync_progress is not None:
        metrics.append(
            Metric(
                "raid_sync_progress_ratio",
                facts.sync_progress,
                "Progress of the running sync, 0..1.",
                uom="",
                minimum=0,
                maximum=1,
            )
        )
    eta = facts.sync_eta_seconds
    if eta is not None:
        metrics.append(
            Metric(
                "raid_sync_eta_seconds", eta, "Time left for the running sync.", uom="s", minimum=0
            )
        )
    if facts.sync_speed_kib:
        metrics.append(
            Metric(
                "raid_sync_speed_bytes_per_second",
                facts.sync_speed_kib * 1024.0,
                "Kernel-reported sync speed.",
                uom="B",
                minimum=0,
                perfdata=False,
            )
        )
    if facts.mismatch_cnt is not None:
        metrics.append(
            Metric(
                "raid_mismatch_sectors",
                facts.mismatch_cnt,
                "mismatch_cnt after the last check or repair.",
                uom="",
            )
        )
    for m in facts.members:
        if m.errors is not None:
            metrics.append(
                Metric(
                    "raid_member_errors",
                    m.errors,
                    "Corrected read errors of a member.",
                    labels={"member": m.device},
                    uom="c",
                    perfdata=False,
                )
            )
    return tuple(metrics)


def evaluate_missing(name: str, expected_disks: int | None, reason: str) -> Result:
    """Return the CRITICAL result of an expected (or recorded) array that is absent."""
    return Result(
        check=CHECK,
        target=name,
        status=Status.CRITICAL,
        summary=f"missing: {reason}",
        data={
            "level": None,
            "array_state": None,
            "raid_disks": expected_disks,
            "in_sync": 0,
            "degraded": None,
            "sync_action": None,
            "sync_progress": None,
            "sync_eta_seconds": None,
            "mismatch_cnt": None,
            "members": [],
        },
    )

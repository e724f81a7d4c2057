"""Run the RAID check: gather (mdstat, sysfs, identity, SMART), evaluate, record."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime

from durability import log as durability_log
from durability.config.raid import RaidSettings
from durability.errors import CommandError, ParseError, ProbeError, StateError
from durability.model import Report, Result, Status
from durability.raid import disks
from durability.raid.evaluate import (
    CHECK,
    ArrayHistory,
    RaidPolicy,
    evaluate_array,
    evaluate_missing,
)
from durability.raid.facts import ArrayFacts, MemberFacts, merge_facts
from durability.raid.mdstat import Mdstat, parse_mdstat
from durability.raid.sysfs import SysfsArray, list_sysfs_arrays, read_sysfs_array
from durability.records import Record, replace
from durability.state.store import Store

log = durability_log.get(__name__)


class Gathered(Record):
    """Everything read from one node: merged arrays, unreadable parts, run notes."""

    arrays: tuple[ArrayFacts, ...]
    unknown: tuple[Result, ...]
    notes: tuple[str, ...]
    mdstat_present: bool


def parse_expect(values: tuple[str, ...] | list[str]) -> dict[str, int | None]:
    """Given 'mdN' / 'mdN:DISKS' strings, return {name: disks or None}."""
    expect: dict[str, int | None] = {}
    for value in values:
        name, _, disks_text = value.partition(":")
        expect[name] = int(disks_text) if disks_text else None
    return expect


def read_mdstat(proc_root: str) -> tuple[Mdstat | None, Result | None]:
    """Read and parse PROC/mdstat. Return (None, None) when there is no md driver.

    An unreadable or unparseable file becomes an UNKNOWN result naming path and reason.
    """
    path = os.path.join(proc_root, "mdstat")
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None, None
    except OSError as error:
        reason = f"cannot read {path}: {error.strerror or error}"
        return None, Result(CHECK, "mdstat", Status.UNKNOWN, reason)
    try:
        return parse_mdstat(text), None
    except ParseError as error:
        return None, Result(CHECK, "mdstat", Status.UNKNOWN, f"cannot parse {path}: {error}")


def gather(settings: RaidSettings, smart: bool) -> Gathered:
    """Read this node's arrays from mdstat and sysfs, with member identity and SMART."""
    mdstat, mdstat_problem = read_mdstat(settings.proc_root)
    unknown: list[Result] = [mdstat_problem] if mdstat_problem else []
    notes: list[str] = []
    by_name = {a.name: a for a in mdstat.arrays} if mdstat else {}
    broken = {}
    if mdstat is not None:
        for problem in mdstat.errors:
            if problem.name is None:
                unknown.append(
                    Result(CHECK, "mdstat", Status.UNKNOWN, f"cannot parse mdstat: {problem.error}")
                )
            else:
                broken[problem.name] = problem.error
    sysfs_names = list_sysfs_arrays(settings.sys_root)
    names = sorted(set(by_name) | set(sysfs_names) | set(broken), key=_natural)
    arrays: list[ArrayFacts] = []
    for name in names:
        if name in broken:
            unknown.append(
                Result(CHECK, name, Status.UNKNOWN, f"cannot parse mdstat: {broken[name]}")
            )
            continue
        sysfs: SysfsArray | None = None
        sysfs_problem: str | None = None
        try:
            sysfs = read_sysfs_array(settings.sys_root, name)
        except ProbeError as error:
            sysfs_problem = str(error)
        listed = by_name.get(name)
        if listed is None:
            if sysfs is None:
                unknown.append(Result(CHECK, name, Status.UNKNOWN, f"cannot read: {sysfs_problem}"))
                continue
            if sysfs.array_state in ("clear", None) or (
                sysfs.array_state == "inactive" and not sysfs.members
            ):
                continue  # left behind by `mdadm --stop`: not an array
        elif listed.lacks_status_line and (
            sysfs is None or sysfs.degraded is None or sysfs.raid_disks is None
        ):
            # Never a guessed count: without [n/m] [U_] nothing says how many copies
            # are complete.
            why = f"sysfs not readable: {sysfs_problem}" if sysfs is None else "sysfs has no count"
            unknown.append(
                Result(
                    CHECK,
                    name,
                    Status.UNKNOWN,
                    f"mdstat block at line {listed.line} has no status line ([n/m] [U_]) "
                    f"and {why}: in-sync members not known",
                )
            )
            continue
        elif listed.is_container:
            notes.append(f"{name}: external-metadata container ({listed.metadata}), volumes judged")
            continue
        arrays.append(merge_facts(name, listed, sysfs, sysfs_problem))
    arrays = [_with_identity(a, settings.sys_root) for a in arrays]
    if smart:
        arrays, smart_notes = _with_smart(arrays, settings)
        notes.extend(smart_notes)
    return Gathered(
        tuple(arrays), tuple(unknown), tuple(notes), mdstat is not None or bool(unknown)
    )


def _natural(name: str) -> tuple[str, int]:
    digits = "".join(ch for ch in name if ch.isdigit())
    return (name.rstrip("0123456789"), int(digits) if digits and name.endswith(digits) else -1)


def _with_identity(facts: ArrayFacts, sys_root: str) -> ArrayFacts:
    members = []
    for member in facts.members:
        try:
            identity = disks.read_identity(sys_root, member.device)
        except (OSError, ImportError) as error:
            log.info("%s: no identity for %s: %s", facts.name, member.device, error)
            identity = None
        members.append(replace(member, identity=identity))
    return replace(facts, members=tuple(members))


def _with_smart(
    arrays: list[ArrayFacts], settings: RaidSettings
) -> tuple[list[ArrayFacts], list[str]]:
    cache: dict[str, disks.SmartHealth | None] = {}
    notes: list[str] = []
    result = []
    for facts in arrays:
        members: list[MemberFacts] = []
        for member in facts.members:
            disk = (member.identity.disk if member.identity else None) or member.device
            if disk not in cache:
                try:
                    cache[disk] = disks.read_smart(settings.smartctl, disk, settings.smart_timeout)
                except CommandError as error:
                    cache[disk] = None
                    note = f"SMART not checked: {error}"
                    if "not found" in str(error):
                        note = (
                            "SMART not checked: smartctl is not installed "
                            "(apt-get install smartmontools)"
                        )
                    if note not in notes:
                        notes.append(note)
                else:
                    health = cache[disk]
                    if health is not None and health.passed is None:
                        notes.append(f"SMART of {disk} unknown: {health.reason}")
            members.append(replace(member, smart=cache[disk]))
        result.append(replace(facts, members=tuple(members)))
    return result, notes


def evaluate(
    gathered: Gathered,
    policy: RaidPolicy,
    history: Mapping[str, tuple[ArrayHistory, bool]],
    now: datetime,
) -> Report:
    """Judge every gathered array, expected arrays and recorded-but-gone arrays."""
    results: list[Result] = []
    present = {a.name for a in gathered.arrays} | {r.target for r in gathered.unknown}
    for facts in gathered.arrays:
        recorded = history.get(facts.name)
        results.append(evaluate_array(facts, policy, recorded[0] if recorded else None, now))
    for name, disks_count in policy.expect.items():
        if name not in present:
            reason = (
                "expected but not present"
                if gathered.mdstat_present
                else ("expected but this node has no md driver (no mdstat)")
            )
            results.append(evaluate_missing(name, disks_count, reason))
    for name, (_, was_present) in sorted(history.items()):
        if name not in present and name not in policy.expect:
            when = "last run" if was_present else "an earlier run"
            results.append(
                evaluate_missing(
                    name,
                    None,
                    f"recorded in the inventory at {when}, gone now "
                    f"(`durability raid ack {name}` if it was removed on purpose)",
                )
            )
    results.extend(gathered.unknown)
    results.sort(key=lambda r: _natural(r.target))
    summary = None
    if not results:
        summary = "no md arrays"
    return Report(CHECK, now, tuple(results), summary_override=summary, notes=gathered.notes)


def run_raid(
    settings: RaidSettings,
    expect: dict[str, int | None],
    store: Store | None,
    now: datetime,
    smart: bool,
    retention_seconds: float = 400 * 86400.0,
) -> Report:
    """Gather, evaluate with history when a store is given, and record the run."""
    from durability.raid import history as raid_history

    policy = RaidPolicy(
        strict_rebuild=settings.strict_rebuild,
        stall_after=settings.stall_after,
        scrub_max_age=settings.scrub_max_age,
        expect={**parse_expect(settings.expect), **expect},
    )
    gathered = gather(settings, smart)
    notes: list[str] = []
    known: dict[str, tuple[ArrayHistory, bool]] = {}
    if store is not None:
        try:
            known = raid_history.load_history(store)
        except StateError as error:
            store = None
            notes.append(f"history not available ({error}): stall, scrub and inventory not checked")
    else:
        notes.append("no state store: stall, scrub-age and inventory checks need history")
    report = evaluate(gathered, policy, known, now)
    if store is not None:
        try:
            raid_history.record_observations(
                store,
                gathered.arrays,
                {r.target: r.status.name for r in report.results},
                now,
                retention_seconds,
            )
        except StateError as error:
            notes.append(f"history not recorded: {error}")
    if notes:
        report = replace(report, notes=(*report.notes, *notes))
    return report

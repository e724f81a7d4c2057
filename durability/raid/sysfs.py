"""Readers of md state in sysfs (`SYS/block/mdN/md/*`). I/O only; the root is a parameter."""

from __future__ import annotations

import os

from durability.errors import ProbeError
from durability.records import Record


class SysfsMember(Record):
    """One `dev-*` folder of an array."""

    device: str
    state: tuple[str, ...]
    slot: int | None
    errors: int | None
    bad_blocks: int  # number of recorded bad-block ranges
    unacknowledged_bad_blocks: int
    recovery_start: str | None


class SysfsArray(Record):
    """The md attributes of one array, as the kernel reports them."""

    name: str
    array_state: str | None
    level: str | None
    raid_disks: int | None
    degraded: int | None
    sync_action: str | None
    last_sync_action: str | None
    sync_completed: tuple[int, int] | None  # sectors done, total
    sync_completed_raw: str | None
    sync_speed: int | None  # KiB/s, as the kernel reports it
    mismatch_cnt: int | None
    layout: int | None
    uuid: str | None
    read_only: bool | None
    members: tuple[SysfsMember, ...]


def list_sysfs_arrays(sys_root: str) -> list[str]:
    """Return the names of md devices that have an `md/` folder under SYS/block."""
    folder = os.path.join(sys_root, "block")
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(
        name
        for name in names
        if name.startswith("md") and os.path.isdir(os.path.join(folder, name, "md"))
    )


def _read(path: str) -> str | None:
    """Return a sysfs attribute stripped, None if absent. Raise ProbeError if unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ProbeError(f"{path}: {error.strerror or error}") from error


def _int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def read_sysfs_array(sys_root: str, name: str) -> SysfsArray:
    """Given a sysfs root and an array name, return its md attributes.

    Raise ProbeError if the array's md folder is missing or cannot be read.
    """
    base = os.path.join(sys_root, "block", name)
    md = os.path.join(base, "md")
    if not os.path.isdir(md):
        raise ProbeError(f"{md}: no such folder")
    try:
        entries = sorted(os.listdir(md))
    except OSError as error:
        raise ProbeError(f"{md}: {error.strerror or error}") from error

    def attr(key: str) -> str | None:
        return _read(os.path.join(md, key))

    members = tuple(
        _read_member(os.path.join(md, entry), entry[4:])
        for entry in entries
        if entry.startswith("dev-") and os.path.isdir(os.path.join(md, entry))
    )
    completed_raw = attr("sync_completed")
    completed = None
    if completed_raw and "/" in completed_raw:
        done, _, total = completed_raw.partition("/")
        done_i, total_i = _int(done.strip()), _int(total.strip())
        if done_i is not None and total_i is not None:
            completed = (done_i, total_i)
    ro = _read(os.path.join(base, "ro"))
    level = attr("level")
    return SysfsArray(
        name=name,
        array_state=attr("array_state"),
        level=level or None,
        raid_disks=_int(attr("raid_disks")),
        degraded=_int(attr("degraded")),
        sync_action=attr("sync_action"),
        last_sync_action=attr("last_sync_action"),
        sync_completed=completed,
        sync_completed_raw=completed_raw,
        sync_speed=_int(attr("sync_speed")),
        mismatch_cnt=_int(attr("mismatch_cnt")),
        layout=_int(attr("layout")),
        uuid=attr("uuid"),
        read_only=None if ro is None else ro == "1",
        members=members,
    )


def _read_member(folder: str, device: str) -> SysfsMember:
    state = _read(os.path.join(folder, "state")) or ""
    bad = _read(os.path.join(folder, "bad_blocks")) or ""
    unacked = _read(os.path.join(folder, "unacknowledged_bad_blocks")) or ""
    slot = _read(os.path.join(folder, "slot"))
    return SysfsMember(
        device=device,
        state=tuple(flag for flag in state.replace(" ", ",").split(",") if flag),
        slot=_int(slot),
        errors=_int(_read(os.path.join(folder, "errors"))),
        bad_blocks=len([line for line in bad.splitlines() if line.strip()]),
        unacknowledged_bad_blocks=len([line for line in unacked.splitlines() if line.strip()]),
        recovery_start=_read(os.path.join(folder, "recovery_start")),
    )

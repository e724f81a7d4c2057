"""Merge mdstat and sysfs into one record per array (pure).

sysfs is the primary source; mdstat is the cross-check and the only place a pending
or delayed resync shows. When sysfs cannot be read, the array is judged from mdstat
alone and its facts say so.
"""

from __future__ import annotations

from durability.raid.disks import DiskIdentity, SmartHealth
from durability.raid.mdstat import MdstatArray
from durability.raid.sysfs import SysfsArray
from durability.records import Record

SECTOR = 512

_MDSTAT_FLAG_STATES = {
    "F": "faulty",
    "S": "spare",
    "W": "write_mostly",
    "J": "journal",
    "R": "replacement",
}


class MemberFacts(Record):
    """One member disk of an array."""

    device: str
    slot: int | None
    state: tuple[str, ...]
    errors: int | None = None
    bad_blocks: int | None = None
    identity: DiskIdentity | None = None
    smart: SmartHealth | None = None
    # mdstat alone gives no slots: True for the member a recovery rebuilds onto.
    rebuild_target: bool = False

    @property
    def in_sync(self) -> bool:
        """Return True when the member holds a complete copy (in_sync and not faulty)."""
        return "in_sync" in self.state and "faulty" not in self.state


class ArrayFacts(Record):
    """Everything known about one array at one moment."""

    name: str
    sources: tuple[str, ...]  # "sysfs", "mdstat"
    level: str | None
    array_state: str | None
    raid_disks: int | None
    degraded: int | None
    sync_action: str | None
    last_sync_action: str | None
    sync_state: str | None  # running, PENDING, DELAYED
    sync_done_sectors: int | None
    sync_total_sectors: int | None
    sync_speed_kib: int | None
    mismatch_cnt: int | None
    read_only: str | None  # "read-only", "auto-read-only"
    members: tuple[MemberFacts, ...]
    copies: int | None = None
    uuid: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def in_sync(self) -> int:
        """Return how many members hold a complete copy."""
        return sum(1 for member in self.members if member.in_sync)

    @property
    def sync_progress(self) -> float | None:
        """Return sync progress 0..1, or None when no sync runs."""
        if self.sync_done_sectors is None or not self.sync_total_sectors:
            return None
        return min(1.0, self.sync_done_sectors / self.sync_total_sectors)

    @property
    def sync_eta_seconds(self) -> float | None:
        """Return the kernel-speed estimate of the time left for the running sync."""
        if self.sync_done_sectors is None or not self.sync_total_sectors or not self.sync_speed_kib:
            return None
        left = max(0, self.sync_total_sectors - self.sync_done_sectors) * SECTOR
        return left / (self.sync_speed_kib * 1024)

    @property
    def sync_running(self) -> bool:
        """Return True when a resync/recovery/check/repair/reshape is active or queued."""
        return self.sync_action not in (None, "idle", "frozen")


def merge_facts(
    name: str,
    mdstat: MdstatArray | None,
    sysfs: SysfsArray | None,
    sysfs_problem: str | None = None,
) -> ArrayFacts:
    """Given what mdstat and sysfs say of one array, return its merged facts."""
    notes: list[str] = []
    if sysfs_problem:
        notes.append(f"judged from mdstat alone: sysfs not readable ({sysfs_problem})")
    if sysfs is None:
        assert mdstat is not None
        return _from_mdstat(name, mdstat, tuple(notes))
    members = tuple(
        MemberFacts(
            device=m.device, slot=m.slot, state=m.state, errors=m.errors, bad_blocks=m.bad_blocks
        )
        for m in sorted(sysfs.members, key=lambda m: (m.slot is None, m.slot or 0, m.device))
    )
    sync_state = None
    sync_action = sysfs.sync_action
    if mdstat is not None and mdstat.sync is not None:
        sync_state = mdstat.sync.state
        if sync_action in (None, "idle"):
            sync_action = mdstat_sync_action(mdstat)
    elif sync_action not in (None, "idle", "frozen"):
        sync_state = "running"
    raw = (sysfs.sync_completed_raw or "").lower()
    if raw in ("delayed", "pending") and sync_state in (None, "running"):
        sync_state = raw.upper()
    done, total = sysfs.sync_completed or (None, None)
    read_only = None
    if sysfs.array_state == "readonly":
        read_only = "read-only"
    elif sysfs.array_state == "read-auto":
        read_only = "auto-read-only"
    elif mdstat is not None:
        read_only = mdstat.read_only
    if mdstat is not None and mdstat.raid_disks is not None and sysfs.degraded is not None:
        mdstat_missing = mdstat.raid_disks - (mdstat.active_disks or 0)
        if mdstat_missing != sysfs.degraded:
            notes.append(
                f"mdstat shows {mdstat.active_disks}/{mdstat.raid_disks} active but sysfs "
                f"degraded={sysfs.degraded} (read at slightly different moments)"
            )
    if mdstat is None:
        notes.append("not listed in mdstat")
    copies = _copies(sysfs.level, sysfs.layout, mdstat)
    return ArrayFacts(
        name=name,
        sources=("sysfs", "mdstat") if mdstat is not None else ("sysfs",),
        level=sysfs.level or (mdstat.level if mdstat else None),
        array_state=sysfs.array_state,
        raid_disks=sysfs.raid_disks,
        degraded=sysfs.degraded,
        sync_action=sync_action if sync_action != "" else None,
        last_sync_action=sysfs.last_sync_action,
        sync_state=sync_state,
        sync_done_sectors=done,
        sync_total_sectors=total,
        sync_speed_kib=sysfs.sync_speed,
        mismatch_cnt=sysfs.mismatch_cnt,
        read_only=read_only,
        members=members,
        copies=copies,
        uuid=sysfs.uuid,
        notes=tuple(notes),
    )


def mdstat_sync_action(array: MdstatArray) -> str | None:
    """Return the sysfs-style action of an array's mdstat sync line (None: no sync).

    md prints a queued sync as `resync=DELAYED` whatever the action: on a degraded array
    with a member waiting to be rebuilt (more members than `U`s in the status map) it is
    a recovery. `resync=PENDING` is always a resync (md prints it for an unfinished
    resync checkpoint only).
    """
    sync = array.sync
    if sync is None:
        return None
    if sync.state == "DELAYED" and sync.action == "resync" and array.status_map is not None:
        candidates = [m for m in array.members if "F" not in m.flags]
        if "_" in array.status_map and len(candidates) > array.status_map.count("U"):
            return "recover"
    return sync.action


def _copies(level: str | None, layout: int | None, mdstat: MdstatArray | None) -> int | None:
    if level != "raid10":
        return None
    if layout is not None and layout > 0:
        near, far = layout & 0xFF, (layout >> 8) & 0xFF
        return max(1, near) * max(1, far)
    if mdstat is not None:
        return (mdstat.near_copies or 1) * (mdstat.far_copies or 1) or 2
    return 2


def _from_mdstat(name: str, array: MdstatArray, notes: tuple[str, ...]) -> ArrayFacts:
    running = array.sync is not None and array.sync.state == "running"
    recovering = array.sync is not None and mdstat_sync_action(array) in ("recover", "resync")
    # The number in brackets is the superblock's descriptor number, not the slot, so
    # in-sync members are counted from the status map: the U's are the complete copies;
    # during a recovery the most recently added member (highest number) is the target.
    # A journal (J) holds no copy and a replacement (R) is not complete until md swaps
    # it in, so neither counts towards the U's.
    candidates = sorted(
        (m for m in array.members if not m.flags & {"F", "S", "J", "R"}), key=lambda m: m.index
    )
    if array.status_map is not None:
        complete = array.status_map.count("U")
    else:
        complete = len(candidates) if array.active else 0
    complete_devices = {m.device for m in candidates[:complete]}
    members = []
    for member in sorted(array.members, key=lambda m: m.index):
        state = [_MDSTAT_FLAG_STATES[f] for f in sorted(member.flags)]
        target = False
        if not member.flags & {"F", "S", "J"} and array.active:
            if member.device in complete_devices:
                state.insert(0, "in_sync")
            elif running or recovering:
                target = recovering
                if running:
                    state.insert(0, "spare")  # the target of the running recovery
        members.append(
            MemberFacts(
                device=member.device, slot=None, state=tuple(state), rebuild_target=target
            )
        )
    degraded = None
    if array.raid_disks is not None and array.active_disks is not None:
        degraded = array.raid_disks - array.active_disks
    sync = array.sync
    done = total = None
    if sync is not None and sync.done_blocks is not None and sync.total_blocks is not None:
        # mdstat counts 1 KiB blocks; sysfs counts 512-byte sectors.
        done, total = sync.done_blocks * 2, sync.total_blocks * 2
    if not array.active:
        state_word = "inactive"
    elif array.read_only == "read-only":
        state_word = "readonly"
    elif array.read_only == "auto-read-only":
        state_word = "read-auto"
    else:
        state_word = "active"
    copies = None
    if array.level == "raid10":
        copies = (array.near_copies or 1) * (array.far_copies or 1)
    return ArrayFacts(
        name=name,
        sources=("mdstat",),
        level=array.level,
        array_state=state_word,
        raid_disks=array.raid_disks,
        degraded=degraded,
        sync_action=mdstat_sync_action(array)
        if sync is not None
        else ("idle" if array.active else None),
        last_sync_action=None,
        sync_state=sync.state if sync is not None else None,
        sync_done_sectors=done,
        sync_total_sectors=total,
        sync_speed_kib=sync.speed_kib if sync is not None else None,
        mismatch_cnt=None,
        read_only=array.read_only,
        members=tuple(members),
        copies=copies,
        notes=notes,
    )

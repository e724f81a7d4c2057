"""`durability-helper status`: enrolled disks, which are present, last copy and check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from durability.errors import ParseError
from durability.helper import disks
from durability.helper.folder import DiskRecord, Folder
from durability.helper.receipts import pending


@dataclass(frozen=True)
class DiskStatus:
    """One enrolled disk as `status` shows it."""

    record: DiskRecord
    mountpoint: str  # "" when not plugged in
    volume: disks.Volume | None = None

    def as_json(self) -> dict[str, Any]:
        """Return the JSON form of this row."""
        r = self.record
        return {
            "name": r.name,
            "fs_uuid": r.fs_uuid,
            "label": r.label,
            "enrolled_at": r.enrolled_at,
            "present": bool(self.mountpoint),
            "mountpoint": self.mountpoint or None,
            "device": self.volume.device if self.volume else None,
            "bus": (self.volume.bus or None) if self.volume else None,
            "removable": self.volume.removable if self.volume else None,
            "last_copy_at": r.last_copy_at or None,
            "last_snapshot_id": r.last_snapshot_id or None,
            "last_verified_at": r.last_verified_at or None,
            "last_verified_ok": r.last_verified_ok,
            "last_error": r.last_error or None,
        }


@dataclass(frozen=True)
class StatusView:
    """Everything `status` shows: the disks and how many receipts wait to be sent."""

    disks: tuple[DiskStatus, ...]
    pending: int

    def as_json(self) -> dict[str, Any]:
        """Return the JSON form of the status."""
        return {"disks": [row.as_json() for row in self.disks], "pending_receipts": self.pending}


def gather_status(
    folder: Folder, proc_root: str = "/proc", sys_root: str = "/sys"
) -> StatusView:
    """Return every enrolled disk with where it is mounted now, and the pending count."""
    state = folder.load()
    try:
        present, _notes = disks.find_enrolled(
            [(d.disk_id, d.fs_uuid) for d in state.disks], proc_root, sys_root
        )
    except (OSError, ParseError):
        present = []
    where = {p.disk_id: p.volume for p in present}
    rows = tuple(
        DiskStatus(d, where[d.disk_id].mountpoint, where[d.disk_id])
        if d.disk_id in where else DiskStatus(d, "")
        for d in state.disks
    )
    waiting = len(pending(folder.path)) if folder.path.is_dir() else 0
    return StatusView(rows, waiting)


def render_status(view: StatusView) -> str:
    """Return the text of `status` (times in local time, as the language writes them)."""
    from durability.helper.i18n import _, format_time, ngettext

    if not view.disks:
        return _("no disk is enrolled yet: run `durability-helper enroll MOUNTPOINT`")
    never = _("never")
    lines = []
    for row in view.disks:
        r = row.record
        where = (_("plugged in at {mountpoint}").format(mountpoint=row.mountpoint)
                 if row.mountpoint else _("not plugged in"))
        lines.append(f"{r.name} ({r.fs_uuid}): {where}")
        rows = [(_("enrolled:"), format_time(r.enrolled_at, "-"))]
        copied = (_("{time} (snapshot {snapshot})").format(
            time=format_time(r.last_copy_at), snapshot=r.last_snapshot_id[:8])
            if r.last_copy_at else never)
        rows.append((_("last copy:"), copied))
        verdict = _("passed") if r.last_verified_ok else _("FAILED")
        verified = (f"{format_time(r.last_verified_at)} ({verdict})"
                    if r.last_verified_at else never)
        rows.append((_("last verified:"), verified))
        if r.last_error:
            rows.append((_("last problem:"), r.last_error))
        width = max(len(title) for title, _value in rows) + 1
        lines.extend(f"  {title:<{width}}{value}" for title, value in rows)
    if view.pending:
        lines.append(ngettext("{count} receipt waiting to be sent to your provider",
                              "{count} receipts waiting to be sent to your provider",
                              view.pending).format(count=view.pending))
    return "\n".join(lines)

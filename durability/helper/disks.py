"""Finding the customer's disks: which filesystems are mounted, and which are enrolled.

Where a udev database exists (desktops, most servers) pyudev names each filesystem
(UUID, label, bus, removable flag); where it does not (containers, minimal systems) the
same facts come from sysfs, `blkid -p` and `/proc/self/mountinfo`. Only a mounted
filesystem whose UUID *and* marker file both match an enrolled disk is ever written.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from durability.errors import CommandError, ParseError
from durability.execute import run
from durability.helper.i18n import _

log = logging.getLogger(__name__)

MARKER_NAME = ".durability-helper"
# A marker is a few hundred bytes of JSON; anything larger is not ours.
MAX_MARKER_BYTES = 4096


@dataclass(frozen=True)
class MountEntry:
    """One line of /proc/self/mountinfo."""

    mount_id: int
    device: str  # "major:minor"
    root: str
    mountpoint: str
    options: tuple[str, ...]
    fstype: str
    source: str

    @property
    def read_only(self) -> bool:
        """Return True if this mount is read-only."""
        return "ro" in self.options


@dataclass(frozen=True)
class Volume:
    """A mounted filesystem as the helper sees it."""

    mountpoint: str
    device: str
    major_minor: str
    fs_uuid: str
    label: str
    fstype: str
    bus: str
    removable: bool | None
    read_only: bool
    mount_id: int


@dataclass(frozen=True)
class Marker:
    """The marker file at the root of an enrolled disk."""

    disk_id: str
    repository: str
    enrolled_at: str


def _unescape(field: str) -> str:
    """Return a mountinfo field with its octal escapes (\\040 for a space) decoded."""
    if "\\" not in field:
        return field
    out = bytearray()
    raw = field.encode("utf-8", "surrogateescape")
    index = 0
    while index < len(raw):
        if raw[index : index + 1] == b"\\" and raw[index + 1 : index + 4].isdigit():
            out.append(int(raw[index + 1 : index + 4], 8))
            index += 4
        else:
            out.append(raw[index])
            index += 1
    return out.decode("utf-8", "surrogateescape")


def parse_mountinfo(text: str) -> list[MountEntry]:
    """Given the text of /proc/self/mountinfo, return its mounts in order.

    Raise ParseError naming the line if one does not have the kernel's shape.
    """
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            separator = fields.index("-", 6)
            entries.append(
                MountEntry(
                    mount_id=int(fields[0]),
                    device=fields[2],
                    root=_unescape(fields[3]),
                    mountpoint=_unescape(fields[4]),
                    options=tuple(fields[5].split(",")),
                    fstype=fields[separator + 1],
                    source=_unescape(fields[separator + 2]),
                )
            )
        except (ValueError, IndexError) as error:
            raise ParseError("not a mountinfo line", line=number, text=line) from error
    return entries


def parse_blkid_export(text: str) -> dict[str, str]:
    """Given `blkid -o export` output for one device, return its KEY=VALUE pairs."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            values[key.strip()] = value.strip()
    return values


def parse_marker(text: str) -> Marker:
    """Given the text of a marker file, return the marker. Raise ValueError if damaged."""
    raw = json.loads(text)
    if not isinstance(raw, dict) or not isinstance(raw.get("disk_id"), str) or not raw["disk_id"]:
        raise ValueError("no disk_id")
    repository = str(raw.get("repository") or "durability-backup")
    if "/" in repository or repository.startswith("."):
        raise ValueError(f"odd repository folder {repository!r}")
    return Marker(
        disk_id=raw["disk_id"],
        repository=repository,
        enrolled_at=str(raw.get("enrolled_at", "")),
    )


def render_marker(marker: Marker) -> str:
    """Return the text of a marker file."""
    body = {
        "disk_id": marker.disk_id,
        "repository": marker.repository,
        "enrolled_at": marker.enrolled_at,
        "about": "This disk holds a restic backup made by durability-helper. "
        "Recover it with: restic -r <this disk>/" + marker.repository + " restore latest",
    }
    return json.dumps(body, indent=2) + "\n"


def write_marker(mountpoint: str, marker: Marker) -> None:
    """Write the marker at the root of a disk, atomically. Raise OSError.

    No chmod: vfat and exFAT sticks refuse most mode changes, and the marker holds
    nothing secret.
    """
    handle, temporary = tempfile.mkstemp(prefix=f"{MARKER_NAME}.", dir=mountpoint)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(render_marker(marker))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, os.path.join(mountpoint, MARKER_NAME))
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_mountinfo(proc_root: str = "/proc") -> list[MountEntry]:
    """Return the mounts this process sees. Raise ParseError or OSError."""
    return parse_mountinfo(Path(proc_root, "self", "mountinfo").read_text(encoding="utf-8"))


def filesystem_mounts(mounts: Sequence[MountEntry]) -> list[MountEntry]:
    """Given all mounts, return one per block-device filesystem: its root, mounted last.

    Bind mounts of a subfolder and pseudo filesystems (proc, tmpfs, overlay) are left
    out (btrfs shows an anonymous 0:N device, so the source decides, not the number);
    a filesystem mounted twice is kept once, at its most recent mount point.
    """
    chosen: dict[str, MountEntry] = {}
    for entry in mounts:
        if entry.root != "/" or not entry.source.startswith("/dev/"):
            continue
        chosen[entry.device] = entry
    return list(chosen.values())


def mount_at(path: str, mounts: Sequence[MountEntry]) -> MountEntry | None:
    """Given a folder and the mounts, return the mount whose mount point it is, or None."""
    real = os.path.realpath(path)
    found = None
    for entry in mounts:
        if entry.mountpoint == real:
            found = entry  # the last one stacked on a mount point is the one visible
    return found


def read_removable(major_minor: str, sys_root: str = "/sys") -> bool | None:
    """Return the kernel's removable flag of a block device (a partition asks its disk)."""
    base = Path(sys_root, "dev", "block", major_minor)
    for candidate in (base / "removable", base / ".." / "removable"):
        try:
            return candidate.read_text(encoding="ascii").strip() == "1"
        except OSError:
            continue
    return None


_BUSES = (("/usb", "usb"), ("/ata", "ata"), ("/nvme", "nvme"), ("/mmc", "mmc"),
           ("/firewire", "ieee1394"), ("/virtio", "virtio"))


def read_bus(major_minor: str, sys_root: str = "/sys") -> str:
    """Return the bus a block device hangs off ("usb", "ata", ...), from its sysfs path.

    "" when the device is virtual (loop, dm) or the path says nothing known.
    """
    try:
        target = os.path.realpath(Path(sys_root, "dev", "block", major_minor))
    except OSError:
        return ""
    for fragment, bus in _BUSES:
        if fragment in target:
            return bus
    return ""


def udev_available(run_root: str = "/run/udev") -> bool:
    """Return True if a udev database exists here (containers usually have none)."""
    return Path(run_root, "data").is_dir()


def probe_blkid(device: str) -> dict[str, str]:
    """Return what blkid says about a device's filesystem ({} if it cannot tell).

    `blkid -p` reads the device itself (needs read access to it); plain `blkid` falls
    back to its cache, which an unprivileged user may read.
    """
    for argv in (["blkid", "-p", "-o", "export", device], ["blkid", "-o", "export", device]):
        try:
            done = run(argv, timeout=30)
        except CommandError as error:
            log.debug("%s", error)
            return {}
        if done.returncode == 0:
            values = parse_blkid_export(done.stdout)
            if values.get("UUID"):
                return values
    return {}


def probe_udev(major_minor: str) -> dict[str, str] | None:
    """Return udev's properties of a block device, or None when udev cannot say."""
    try:
        import pyudev
    except ImportError:
        return None
    try:
        major, minor = (int(part) for part in major_minor.split(":"))
        context = pyudev.Context()
        device = pyudev.Devices.from_device_number(context, "block", os.makedev(major, minor))
        properties = {key: str(device.properties[key]) for key in device.properties}
    except Exception as error:  # pyudev raises several unrelated types
        log.debug("udev has nothing on %s: %s", major_minor, error)
        return None
    if not properties.get("ID_FS_UUID"):
        return None
    return {
        "UUID": properties.get("ID_FS_UUID", ""),
        "LABEL": properties.get("ID_FS_LABEL", ""),
        "TYPE": properties.get("ID_FS_TYPE", ""),
        "BUS": properties.get("ID_BUS", ""),
    }


def describe(
    entry: MountEntry, *, use_udev: bool | None = None, sys_root: str = "/sys"
) -> Volume:
    """Given a mount, return the volume with its identity (UUID empty if unknown)."""
    if use_udev is None:
        use_udev = udev_available()
    facts = probe_udev(entry.device) if use_udev else None
    if facts is None:
        facts = probe_blkid(entry.source)
    return Volume(
        mountpoint=entry.mountpoint,
        device=entry.source,
        major_minor=entry.device,
        fs_uuid=facts.get("UUID", ""),
        label=facts.get("LABEL", ""),
        fstype=facts.get("TYPE", "") or entry.fstype,
        bus=facts.get("BUS", "") or read_bus(entry.device, sys_root),
        removable=read_removable(entry.device, sys_root),
        read_only=entry.read_only or _statvfs_read_only(entry.mountpoint),
        mount_id=entry.mount_id,
    )


def _statvfs_read_only(path: str) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def read_marker(mountpoint: str) -> Marker | None:
    """Return the marker at the root of a mounted filesystem, or None if it has none.

    A damaged or unreadable marker counts as none: such a disk is never written. The
    marker is opened without following a symbolic link and without waiting (a FIFO or
    device never blocks or floods the helper), and must be a regular file of at most
    `MAX_MARKER_BYTES`.
    """
    path = Path(mountpoint, MARKER_NAME)
    try:
        return parse_marker(_read_marker_text(path))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        log.warning("%s", _("the marker file {file} is damaged or cannot be read, so this disk "
                            "is left untouched").format(file=path))
        log.debug("%s: %s", path, error)
        return None


def _read_marker_text(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > MAX_MARKER_BYTES:
            raise ValueError(f"larger than {MAX_MARKER_BYTES} bytes")
        data = os.read(fd, MAX_MARKER_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_MARKER_BYTES:
        raise ValueError(f"larger than {MAX_MARKER_BYTES} bytes")
    return data.decode("utf-8")


@dataclass(frozen=True)
class Present:
    """An enrolled disk that is mounted now."""

    disk_id: str
    volume: Volume
    marker: Marker


def find_enrolled(
    enrolled: Sequence[tuple[str, str]],
    proc_root: str = "/proc",
    sys_root: str = "/sys",
    *,
    use_udev: bool | None = None,
) -> tuple[list[Present], list[str]]:
    """Given enrolled (disk_id, fs_uuid) pairs, return the ones mounted and notes.

    A mount counts only if its marker names an enrolled disk id and its filesystem
    UUID is that disk's; a filesystem whose UUID cannot be read is passed over (a marker
    alone is easily copied). Filesystems without a marker are not probed at all. The
    notes say why a disk with a marker was passed over.
    """
    wanted = dict(enrolled)
    present: list[Present] = []
    notes: list[str] = []
    seen: set[str] = set()
    for entry in filesystem_mounts(read_mountinfo(proc_root)):
        marker = read_marker(entry.mountpoint)
        if marker is None or marker.disk_id not in wanted or marker.disk_id in seen:
            continue
        volume = describe(entry, use_udev=use_udev, sys_root=sys_root)
        if not volume.fs_uuid:
            notes.append(_(
                "cannot read the filesystem UUID of {device} at {mountpoint}: it is left "
                "untouched (run the helper as root, or where udev runs)").format(
                    device=volume.device, mountpoint=entry.mountpoint))
            continue
        if volume.fs_uuid != wanted[marker.disk_id]:
            notes.append(_(
                "{mountpoint} carries the marker of an enrolled disk but its filesystem UUID "
                "is {uuid}, not {expected}: it is left untouched (a copied disk?)").format(
                    mountpoint=entry.mountpoint, uuid=volume.fs_uuid,
                    expected=wanted[marker.disk_id]))
            continue
        seen.add(marker.disk_id)
        present.append(Present(marker.disk_id, volume, marker))
    return present, notes


def still_mounted(present: Present, proc_root: str = "/proc") -> bool:
    """Return True if the disk is still mounted where it was, with the same marker."""
    try:
        mounts = read_mountinfo(proc_root)
    except (OSError, ParseError):
        return False
    entry = mount_at(present.volume.mountpoint, mounts)
    if entry is None or entry.mount_id != present.volume.mount_id:
        return False
    marker = read_marker(present.volume.mountpoint)
    return marker is not None and marker.disk_id == present.disk_id


def open_pinned(present: Present, relative: str) -> tuple[int, str]:
    """Open a folder on an enrolled disk and return (fd, a path that stays on that disk).

    The path goes through /proc/PID/fd, so whatever is later mounted at the same mount
    point (or left behind when the disk is unmounted) is never written by mistake: restic
    keeps writing to this very filesystem or fails. Raise OSError if the folder is not on
    the disk's filesystem. The caller closes the fd.
    """
    fd = os.open(os.path.join(present.volume.mountpoint, relative), os.O_RDONLY | os.O_DIRECTORY)
    try:
        device = os.fstat(fd).st_dev
        major, minor = (int(part) for part in present.volume.major_minor.split(":"))
        if device != os.makedev(major, minor):
            raise OSError(_("{folder} is not on the enrolled disk").format(folder=relative))
    except BaseException:
        os.close(fd)
        raise
    return fd, f"/proc/{os.getpid()}/fd/{fd}"

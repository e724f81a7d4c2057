"""Member disk identity (udev or sysfs) and SMART health (smartctl --json)."""

from __future__ import annotations

import json
import os

from durability.errors import CommandError
from durability.records import Record

UDEV_DATABASE = "/run/udev/data"


class DiskIdentity(Record):
    """Who a member disk is: serial, model and its stable /dev/disk/by-id link."""

    disk: str | None = None  # the whole disk holding the member (sda for sda1)
    serial: str | None = None
    model: str | None = None
    by_id: str | None = None
    source: str | None = None  # "udev" or "sysfs"


class SmartHealth(Record):
    """What smartctl said about one disk; `passed` None when it could not tell."""

    disk: str
    passed: bool | None
    reason: str
    exit_status: int | None = None


def udev_available(sys_root: str) -> bool:
    """Return True when a udev database describes the live system being read."""
    return os.path.realpath(sys_root) == "/sys" and os.path.isdir(UDEV_DATABASE)


def parent_disk(sys_root: str, device: str) -> str:
    """Return the whole disk of a partition (sda1 -> sda, nvme0n1p2 -> nvme0n1)."""
    link = os.path.join(sys_root, "class", "block", device)
    if os.path.exists(os.path.join(link, "partition")):
        return os.path.basename(os.path.dirname(os.path.realpath(link)))
    return device


def _first(paths: list[str]) -> str | None:
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                value = handle.read().strip()
        except OSError:
            continue
        if value:
            return value
    return None


def read_identity_sysfs(sys_root: str, device: str) -> DiskIdentity:
    """Given a member device, return its identity from sysfs (no udev needed)."""
    disk = parent_disk(sys_root, device)
    base = os.path.join(sys_root, "class", "block", disk)
    serial = _first(
        [
            os.path.join(base, "device", "serial"),
            os.path.join(base, "serial"),
            os.path.join(base, "device", "wwid"),
            os.path.join(base, "wwid"),
        ]
    )
    model = _first([os.path.join(base, "device", "model")])
    if serial is None and model is None:
        return DiskIdentity(disk=disk)
    return DiskIdentity(disk=disk, serial=serial, model=model, source="sysfs")


def read_identity_udev(device: str) -> DiskIdentity:
    """Given a member device of the live system, return its identity from udev.

    Fall back to sysfs when udev does not know the device.
    """
    import pyudev

    try:
        context = pyudev.Context()
        udev_device = pyudev.Devices.from_name(context, "block", device)
    except (pyudev.DeviceNotFoundError, OSError, ValueError):
        return read_identity_sysfs("/sys", device)
    properties = udev_device.properties
    disk = device
    if properties.get("DEVTYPE") == "partition" and udev_device.parent is not None:
        disk = udev_device.parent.sys_name
    links = [link for link in (properties.get("DEVLINKS") or "").split() if "/by-id/" in link]
    preferred = [link for link in links if "/by-id/wwn-" not in link and "-part" not in link]
    by_id = (preferred or sorted(links) or [None])[0]
    serial = properties.get("ID_SERIAL_SHORT") or properties.get("ID_SERIAL")
    model = properties.get("ID_MODEL")
    if serial is None or model is None:
        # Some drivers (virtio, some RAID HBAs) give udev no serial; sysfs may have one.
        fallback = read_identity_sysfs("/sys", device)
        serial = serial or fallback.serial
        model = model or fallback.model
    return DiskIdentity(disk=disk, serial=serial, model=model, by_id=by_id, source="udev")


def read_identity(sys_root: str, device: str) -> DiskIdentity:
    """Return a member's identity from udev where a udev database exists, else sysfs."""
    if udev_available(sys_root):
        return read_identity_udev(device)
    return read_identity_sysfs(sys_root, device)


def smartctl_argv(smartctl: str, disk: str) -> list[str]:
    """Return the smartctl command for one disk's overall health.

    `-n standby` leaves sleeping disks asleep: a check every few minutes must not
    spin up archive disks.
    """
    return [smartctl, "--json=c", "-H", "-i", "-n", "standby,0", f"/dev/{disk}"]


def parse_smartctl(disk: str, returncode: int, stdout: str) -> SmartHealth:
    """Given smartctl's exit status and JSON output, return the disk's SMART health.

    smartctl's exit status is a bit mask: bit 1 the device could not be opened, bit 2
    a SMART command failed, bit 3 the disk reports itself failing, bit 4 pre-failure
    attributes at or below threshold.
    """
    try:
        document = json.loads(stdout) if stdout.strip() else {}
    except json.JSONDecodeError:
        document = {}
    messages = [
        str(m.get("string", ""))
        for m in document.get("smartctl", {}).get("messages", [])
        if isinstance(m, dict)
    ]
    status = document.get("smart_status")
    if isinstance(status, dict) and isinstance(status.get("passed"), bool):
        if not status["passed"]:
            return SmartHealth(disk, False, "SMART overall health: FAILED", returncode)
        if returncode & 0b10000:
            return SmartHealth(disk, False, "SMART pre-failure attribute at threshold", returncode)
        return SmartHealth(disk, True, "SMART overall health: PASSED", returncode)
    if returncode & 0b1000:
        return SmartHealth(disk, False, "SMART reports the disk failing", returncode)
    reason = messages[0] if messages else f"no SMART status (smartctl exit {returncode})"
    return SmartHealth(disk, None, reason, returncode)


def read_smart(smartctl: str, disk: str, timeout: float) -> SmartHealth:
    """Run smartctl for one disk and return its health.

    Raise CommandError if smartctl is missing or cannot run (the caller turns this into
    a note: a missing smartctl never hides a RAID result).
    """
    from durability import execute

    done = execute.run(smartctl_argv(smartctl, disk), timeout=timeout)
    if done.returncode & 0b1 and not done.stdout.strip():
        raise CommandError(f"smartctl failed: {done.stderr.strip() or 'usage error'}")
    return parse_smartctl(disk, done.returncode, done.stdout)

"""Disk discovery: pure parsers, sysfs readers on a fake tree, and real mounts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from durability.errors import ParseError
from durability.helper import disks
from tests.helper.conftest import LoopDisk

MOUNTINFO = """\
22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
23 22 0:21 / /proc rw,nosuid - proc proc rw
40 22 8:17 / /media/ola/MY\\040DISK rw,nosuid,nodev shared:9 - vfat /dev/sdb1 rw,uid=1000
41 22 8:17 /sub /srv/bound rw - vfat /dev/sdb1 rw
42 22 8:33 / /media/ola/OLD ro,nosuid - ext4 /dev/sdc1 ro
43 22 0:45 / /mnt/pool rw - btrfs /dev/sdd rw
"""


def test_parse_mountinfo_escapes_and_optional_fields_parsed() -> None:
    entries = disks.parse_mountinfo(MOUNTINFO)
    assert [e.mountpoint for e in entries][2] == "/media/ola/MY DISK"
    assert entries[2].source == "/dev/sdb1"
    assert entries[2].fstype == "vfat"
    assert entries[2].device == "8:17"
    assert entries[4].read_only is True
    assert entries[2].read_only is False


def test_parse_mountinfo_bad_line_names_it() -> None:
    with pytest.raises(ParseError, match="line 2"):
        disks.parse_mountinfo("22 1 8:2 / / rw - ext4 /dev/sda2 rw\ngarbage here\n")


def test_filesystem_mounts_skips_pseudo_and_bind_keeps_btrfs() -> None:
    chosen = disks.filesystem_mounts(disks.parse_mountinfo(MOUNTINFO))
    assert [e.mountpoint for e in chosen] == [
        "/", "/media/ola/MY DISK", "/media/ola/OLD", "/mnt/pool",
    ]


def test_mount_at_only_the_mount_point_itself() -> None:
    entries = disks.parse_mountinfo(MOUNTINFO)
    found = disks.mount_at("/media/ola/MY DISK", entries)
    assert found is not None and found.mount_id == 40
    assert disks.mount_at("/media/ola", entries) is None


def test_parse_blkid_export_values() -> None:
    text = "DEVNAME=/dev/sdb1\nUUID=ABCD-1234\nLABEL=MY DISK\nTYPE=vfat\n"
    assert disks.parse_blkid_export(text) == {
        "DEVNAME": "/dev/sdb1", "UUID": "ABCD-1234", "LABEL": "MY DISK", "TYPE": "vfat",
    }


def test_parse_marker_roundtrip() -> None:
    marker = disks.Marker("f" * 32, "durability-backup", "2026-11-25T10:00:00Z")
    assert disks.parse_marker(disks.render_marker(marker)) == marker


@pytest.mark.parametrize(
    "text", ["not json", "{}", '{"disk_id": ""}', '{"disk_id": "x", "repository": "../etc"}'],
)
def test_parse_marker_damaged_raises(text: str) -> None:
    with pytest.raises(ValueError):
        disks.parse_marker(text)


def test_read_marker_damaged_counts_as_none(tmp_path: Path) -> None:
    (tmp_path / disks.MARKER_NAME).write_text("{broken")
    assert disks.read_marker(str(tmp_path)) is None


def test_read_removable_partition_asks_its_disk(tmp_path: Path) -> None:
    disk = tmp_path / "devices" / "sdb"
    (disk / "sdb1").mkdir(parents=True)
    (disk / "removable").write_text("1\n")
    block = tmp_path / "dev" / "block"
    block.mkdir(parents=True)
    (block / "8:16").symlink_to(disk)
    (block / "8:17").symlink_to(disk / "sdb1")
    assert disks.read_removable("8:16", str(tmp_path)) is True
    assert disks.read_removable("8:17", str(tmp_path)) is True
    assert disks.read_removable("9:9", str(tmp_path)) is None


def test_read_bus_usb_stick_from_sysfs_path(tmp_path: Path) -> None:
    device = tmp_path / "devices" / "pci0000:00" / "0000:00:14.0" / "usb2" / "2-1" / "sdb"
    device.mkdir(parents=True)
    block = tmp_path / "dev" / "block"
    block.mkdir(parents=True)
    (block / "8:16").symlink_to(device)
    (block / "7:0").symlink_to(tmp_path / "devices" / "virtual")
    assert disks.read_bus("8:16", str(tmp_path)) == "usb"
    assert disks.read_bus("7:0", str(tmp_path)) == ""


def test_find_enrolled_fake_proc_without_marker_probes_nothing(tmp_path: Path) -> None:
    proc = tmp_path / "proc" / "self"
    proc.mkdir(parents=True)
    (proc / "mountinfo").write_text(MOUNTINFO)
    present, notes = disks.find_enrolled([("a" * 32, "ABCD-1234")], str(tmp_path / "proc"))
    assert present == [] and notes == []


@pytest.mark.root
def test_describe_loop_disk_without_udev_uses_blkid(
    loop_disk: Callable[..., LoopDisk],
) -> None:
    disk = loop_disk(label="PROBE")
    entry = disks.mount_at(str(disk.mountpoint), disks.read_mountinfo())
    assert entry is not None
    volume = disks.describe(entry, use_udev=False)
    assert volume.fs_uuid == disk.uuid()
    assert volume.label == "PROBE"
    assert volume.fstype == "ext4"
    assert volume.removable is False
    assert volume.read_only is False


@pytest.mark.root
def test_describe_loop_disk_with_udev_same_identity(loop_disk: Callable[..., LoopDisk]) -> None:
    if not disks.udev_available():
        pytest.skip("no udev database on this machine (/run/udev/data)")
    disk = loop_disk(label="PROBE")
    entry = disks.mount_at(str(disk.mountpoint), disks.read_mountinfo())
    assert entry is not None
    assert disks.describe(entry, use_udev=True).fs_uuid == disk.uuid()


def test_helper_import_stays_light() -> None:
    code = (
        "import sys\n"
        "import durability.helper.cli, durability.helper.copy, durability.helper.enroll\n"
        "import durability.helper.status, durability.helper.receipts\n"
        "heavy = [m for m in ('boto3', 'botocore', 'jinja2', 'werkzeug', 'schedule',"
        " 'waitress', 'rich', 'babel', 'psycopg', 'durability.config', 'durability.web')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.stdout.strip() == ""

"""enroll, copy, confirm and status on real loop-mounted filesystems with a real restic."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from durability.helper import copy as copy_module
from tests.helper.conftest import Helper, LoopDisk, tree_state

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _restic(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["restic", *argv], capture_output=True, text=True, check=False)


def _enroll(helper: Helper, disk: LoopDisk) -> None:
    result = helper("enroll", disk.mountpoint)
    assert result.code == 0, result.stderr


def test_enroll_copy_status_ext4_verified_receipt(
    helper: Helper, loop_disk: Callable[..., LoopDisk], source: Path
) -> None:
    disk = loop_disk("ext4", label="BACKUP1")
    enrolled = helper("enroll", disk.mountpoint)
    assert enrolled.code == 0, enrolled.stderr
    assert "restore latest" in enrolled.stdout
    assert oct(helper.folder.stat().st_mode & 0o777) == "0o700"
    assert oct(helper.key_file().stat().st_mode & 0o777) == "0o600"
    marker = json.loads((disk.mountpoint / ".durability-helper").read_text())
    assert len(marker["disk_id"]) == 32

    copied = helper("copy", source)
    assert copied.code == 0, copied.stderr
    assert "verified" in copied.stdout
    [receipt_file] = helper.receipts()
    receipt = json.loads(receipt_file.read_text())["receipt"]
    assert receipt["verified"] is True
    assert receipt["files"] == 3
    assert receipt["bytes"] == sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    assert len(receipt["snapshot_id"]) == 64
    assert marker["disk_id"] not in receipt_file.read_text()
    assert "letter" not in receipt_file.read_text()

    status = helper("status", "--json")
    assert status.code == 0
    [row] = json.loads(status.stdout)["disks"]
    assert row["present"] is True
    assert row["label"] == "BACKUP1"
    assert row["device"] == disk.device
    assert row["removable"] is False
    assert row["last_snapshot_id"] == receipt["snapshot_id"]
    assert row["last_verified_ok"] is True

    # `copy` alone copies the same folders again (what the plug-in trigger runs).
    again = helper("copy")
    assert again.code == 0, again.stderr
    assert len(helper.receipts()) == 2


def test_enroll_printed_recovery_commands_restore_with_plain_restic(
    helper: Helper, loop_disk: Callable[..., LoopDisk], source: Path, tmp_path: Path
) -> None:
    disk = loop_disk()
    enrolled = helper("enroll", disk.mountpoint)
    assert helper("copy", source).code == 0
    [restore_line] = [
        line for line in enrolled.stdout.splitlines() if "restore latest" in line
    ]
    argv = shlex.split(restore_line.strip())
    argv[argv.index("--target") + 1] = str(tmp_path / "restored")
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    back = tmp_path / "restored" / str(source).lstrip("/") / "photos" / "cat [1].jpg"
    assert back.read_bytes() == (source / "photos" / "cat [1].jpg").read_bytes()


def test_copy_never_enrolled_disk_stays_untouched(
    helper: Helper, loop_disk: Callable[..., LoopDisk], source: Path
) -> None:
    enrolled = loop_disk(label="MINE")
    stranger = loop_disk(label="STRANGER")
    (stranger.mountpoint / "family").mkdir()
    (stranger.mountpoint / "family" / "photo.jpg").write_bytes(b"\xff\xd8 not ours")
    before = tree_state(stranger.mountpoint)
    _enroll(helper, enrolled)
    assert helper("copy", source).code == 0
    assert helper("status").code == 0
    assert tree_state(stranger.mountpoint) == before


def test_copy_marker_on_other_filesystem_is_left_untouched(
    helper: Helper, loop_disk: Callable[..., LoopDisk], source: Path
) -> None:
    original = loop_disk(label="MINE")
    clone = loop_disk(label="CLONE")
    _enroll(helper, original)
    # Someone copied the marker (and nothing else) to another disk.
    (clone.mountpoint / ".durability-helper").write_bytes(
        (original.mountpoint / ".durability-helper").read_bytes()
    )
    (clone.mountpoint / "durability-backup").mkdir()
    original.unmount()
    before = tree_state(clone.mountpoint)
    result = helper("copy", source)
    assert result.code == 1
    assert "left untouched" in result.stderr
    assert "none of your enrolled disks is plugged in" in result.stderr
    assert tree_state(clone.mountpoint) == before
    assert helper.receipts() == []


def test_copy_full_disk_says_how_much_is_needed_and_keeps_repository(
    helper: Helper, loop_disk: Callable[..., LoopDisk], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # restic 0.14 sometimes hangs after "no space left on device"; the guard stops it.
    monkeypatch.setattr(copy_module, "STUCK_AFTER", 3.0)
    disk = loop_disk(size_mb=16, label="SMALL")
    _enroll(helper, disk)
    big = tmp_path / "archive"
    big.mkdir()
    (big / "backup.tar.gz").write_bytes(os.urandom(24 * 1024 * 1024))
    result = helper("copy", big)
    assert result.code == 1
    assert "disk SMALL is full; the copy needs up to 24.0 MiB" in result.stderr
    assert "the unfinished copy was removed again" in result.stderr
    assert helper.receipts() == []
    password = str(helper.key_file())
    repo = str(disk.mountpoint / "durability-backup")
    # --no-lock: a disk filled to the last byte has no room even for a lock file.
    checked = _restic("-r", repo, "--password-file", password, "--no-lock", "check")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(
        _restic("-r", repo, "--password-file", password, "--no-lock", "snapshots", "--json")
        .stdout
    ) == []


def test_copy_disk_unmounted_mid_copy_no_receipt(
    helper: Helper, loop_disk: Callable[..., LoopDisk], tmp_path: Path
) -> None:
    disk = loop_disk(size_mb=96)
    _enroll(helper, disk)
    data = tmp_path / "data"
    data.mkdir()
    # Enough for restic to write several packs; the disk goes as soon as the first
    # appears, and the copy's later steps (check, sample restore) take longer still.
    for index in range(4):
        (data / f"part{index}.bin").write_bytes(os.urandom(6 * 1024 * 1024))
    packs = disk.mountpoint / "durability-backup" / "data"
    pulled = threading.Event()

    def pull_when_writing() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(p.is_file() for p in packs.rglob("*")):
                disk.unmount(lazy=True)
                pulled.set()
                return
            time.sleep(0.01)

    puller = threading.Thread(target=pull_when_writing)
    puller.start()
    result = helper("copy", data)
    puller.join()
    assert pulled.is_set()
    assert result.code == 1
    assert "was removed or unmounted during the copy" in result.stderr
    assert helper.receipts() == []
    # Nothing was written into the bare mount point left behind.
    assert list(disk.mountpoint.iterdir()) == []
    # Plugged in again, the repository is usable and the next copy gets its receipt.
    disk.mount()
    again = helper("copy", data, "--sample", "2")
    assert again.code == 0, again.stderr
    assert len(helper.receipts()) == 1


def test_copy_read_only_mount_clear_error(
    helper: Helper, loop_disk: Callable[..., LoopDisk], source: Path
) -> None:
    disk = loop_disk(label="RO")
    _enroll(helper, disk)
    disk.unmount()
    disk.mount("ro")
    result = helper("copy", source)
    assert result.code == 1
    assert "disk RO is mounted read-only" in result.stderr
    assert helper.receipts() == []


def test_enroll_read_only_mount_writes_nothing(
    helper: Helper, loop_disk: Callable[..., LoopDisk]
) -> None:
    disk = loop_disk(label="RO")
    disk.unmount()
    disk.mount("ro")
    result = helper("enroll", disk.mountpoint)
    assert result.code == 1
    assert "mounted read-only" in result.stderr
    assert sorted(p.name for p in disk.mountpoint.iterdir()) == ["lost+found"]


def test_copy_corrupted_pack_fails_verification(
    helper: Helper, loop_disk: Callable[..., LoopDisk], source: Path
) -> None:
    disk = loop_disk(label="ROT")
    _enroll(helper, disk)
    assert helper("copy", source).code == 0
    packs = sorted(
        (p for p in (disk.mountpoint / "durability-backup" / "data").rglob("*") if p.is_file()),
        key=lambda p: p.stat().st_size,
    )
    largest = packs[-1]
    data = bytearray(largest.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    largest.chmod(0o600)
    largest.write_bytes(bytes(data))
    result = helper("copy", "--read-data-subsets", "1")
    assert result.code == 1
    assert "verification failed" in result.stderr
    assert len(helper.receipts()) == 1
    status = json.loads(helper("status", "--json").stdout)["disks"][0]
    assert "verification failed" in status["last_error"]
    assert status["last_verified_ok"] is False
    assert "(FAILED)" in helper("status").stdout


def test_copy_corrupted_pack_caught_by_sample_restore(
    helper: Helper, loop_disk: Callable[..., LoopDisk], source: Path
) -> None:
    disk = loop_disk(label="ROT")
    _enroll(helper, disk)
    assert helper("copy", source).code == 0
    for pack in (disk.mountpoint / "durability-backup" / "data").rglob("*"):
        if pack.is_file() and pack.stat().st_size > 200_000:
            data = bytearray(pack.read_bytes())
            data[1000:1016] = bytes(16)
            pack.chmod(0o600)
            pack.write_bytes(bytes(data))
    # A check of one part in 1000 almost surely skips the damaged pack; the sample does not.
    result = helper("copy", "--read-data-subsets", "1000")
    assert result.code == 1
    assert "verification failed" in result.stderr
    assert len(helper.receipts()) == 1


def test_copy_missing_restic_says_how_to_install(
    helper: Helper, loop_disk: Callable[..., LoopDisk], source: Path
) -> None:
    disk = loop_disk()
    _enroll(helper, disk)
    result = helper("--restic", "/nonexistent/restic", "copy", source)
    assert result.code == 1
    assert "restic is not installed: install it with `sudo apt install restic`" in result.stderr
    assert helper.receipts() == []


def test_enroll_missing_restic_leaves_disk_clean(
    helper: Helper, loop_disk: Callable[..., LoopDisk]
) -> None:
    disk = loop_disk()
    result = helper("--restic", "/nonexistent/restic", "enroll", disk.mountpoint)
    assert result.code == 1
    assert "restic is not installed" in result.stderr
    assert sorted(p.name for p in disk.mountpoint.iterdir()) == ["lost+found"]
    assert list((helper.folder / "keys").iterdir()) == []
    assert json.loads(helper("status", "--json").stdout)["disks"] == []


def test_copy_wrong_password_clear_error(
    helper: Helper, loop_disk: Callable[..., LoopDisk], source: Path
) -> None:
    disk = loop_disk(label="LOCKED")
    _enroll(helper, disk)
    helper.key_file().write_text("not the password\n")
    result = helper("copy", source)
    assert result.code == 1
    assert "disk LOCKED: the password (from " in result.stderr
    assert "does not open the backup" in result.stderr
    assert "not the password" not in result.stderr
    assert helper.receipts() == []


def test_copy_missing_password_file_clear_error(
    helper: Helper, loop_disk: Callable[..., LoopDisk], source: Path
) -> None:
    disk = loop_disk(label="NOKEY")
    _enroll(helper, disk)
    helper.key_file().unlink()
    result = helper("copy", source)
    assert result.code == 1
    assert "its password file" in result.stderr and "is missing" in result.stderr
    assert helper.receipts() == []


def test_enroll_password_command_copy_works(
    helper: Helper, loop_disk: Callable[..., LoopDisk], source: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "vault.txt"
    secret.write_text("correct horse battery staple\n")
    disk = loop_disk()
    command = f"cat {secret}"
    enrolled = helper("enroll", "--password-command", command, disk.mountpoint)
    assert enrolled.code == 0, enrolled.stderr
    assert "--password-command" in enrolled.stdout
    assert "correct horse" not in enrolled.stdout
    assert list((helper.folder / "keys").iterdir()) == []
    assert helper("copy", source).code == 0
    secret.write_text("something else\n")
    assert helper("copy", source).code == 1


def test_copy_no_enrolled_disk_present_exit_1(
    helper: Helper, loop_disk: Callable[..., LoopDisk], source: Path
) -> None:
    disk = loop_disk(label="AWAY")
    _enroll(helper, disk)
    disk.unmount()
    result = helper("copy", source)
    assert result.code == 1
    assert "none of your enrolled disks is plugged in (enrolled: AWAY)" in result.stderr
    status = helper("status")
    assert "AWAY" in status.stdout and "not plugged in" in status.stdout


def test_copy_missing_source_touches_nothing(
    helper: Helper, loop_disk: Callable[..., LoopDisk], tmp_path: Path
) -> None:
    disk = loop_disk()
    _enroll(helper, disk)
    before = tree_state(disk.mountpoint)
    result = helper("copy", tmp_path / "nope")
    assert result.code == 1
    assert "nope does not exist" in result.stderr
    assert tree_state(disk.mountpoint) == before


def test_enroll_twice_refused(helper: Helper, loop_disk: Callable[..., LoopDisk]) -> None:
    disk = loop_disk(label="TWICE")
    _enroll(helper, disk)
    result = helper("enroll", disk.mountpoint)
    assert result.code == 1
    assert "already enrolled" in result.stderr


def test_enroll_not_a_mount_point_refused(helper: Helper, tmp_path: Path) -> None:
    result = helper("enroll", tmp_path)
    assert result.code == 1
    assert "is not where a disk is mounted" in result.stderr


def test_enroll_copy_vfat(
    helper: Helper, loop_disk: Callable[..., LoopDisk], source: Path
) -> None:
    disk = loop_disk("vfat", label="STICK")
    _enroll(helper, disk)
    result = helper("copy", source)
    assert result.code == 0, result.stderr
    assert len(helper.receipts()) == 1


def test_copy_full_disk_removes_the_unfinished_copy(
    helper: Helper, loop_disk: Callable[..., LoopDisk], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Several packs fit before the disk fills: they are removed again, the disk is free."""
    monkeypatch.setattr(copy_module, "STUCK_AFTER", 3.0)
    disk = loop_disk(size_mb=64, label="SMALL")
    _enroll(helper, disk)
    free_before = shutil.disk_usage(disk.mountpoint).free
    data = tmp_path / "data"
    data.mkdir()
    for index in range(10):
        (data / f"part{index}.bin").write_bytes(os.urandom(10 * 1024 * 1024))
    result = helper("copy", data)
    assert result.code == 1
    assert "disk SMALL is full; the copy needs up to 100.0 MiB" in result.stderr
    assert "the unfinished copy was removed again, so the disk is as before" in result.stderr
    assert helper.receipts() == []
    # Within a few blocks of what was free before the copy (restic's index and lock).
    assert free_before - shutil.disk_usage(disk.mountpoint).free < 256 * 1024
    password = str(helper.key_file())
    repo = str(disk.mountpoint / "durability-backup")
    checked = _restic("-r", repo, "--password-file", password, "check")
    assert checked.returncode == 0, checked.stderr


def test_copy_in_polish_from_lang(
    helper: Helper, loop_disk: Callable[..., LoopDisk], source: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    disk = loop_disk(label="KOPIA")
    _enroll(helper, disk)
    monkeypatch.setenv("LANG", "pl_PL.UTF-8")
    result = helper("copy", source)
    assert result.code == 0, result.stderr
    assert "dysk KOPIA: skopiowano 3 pliki (" in result.stdout
    assert "i sprawdzono kopię; identyfikator kopii: " in result.stdout
    status = helper("status")
    assert "KOPIA (" in status.stdout and "podłączony w " in status.stdout
    assert "ostatnie sprawdzenie:" in status.stdout and "(udane)" in status.stdout
    assert "T" not in status.stdout.split("ostatnia kopia:")[1].split("(")[0]  # not ISO

"""The restic side of the helper: one repository per enrolled disk.

All calls go through `durability.restic.Restic` (and so `durability.execute.run`). The
password travels as RESTIC_PASSWORD_FILE or, for a password command, as
RESTIC_PASSWORD_COMMAND: never on a command line. Failures become one customer-facing
line (`explain`).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from durability import resticls
from durability.helper.folder import HelperError
from durability.restic import Restic, ResticError
from durability.units import format_bytes

TAG = "durability-helper"
# A copy of many gigabytes to a slow USB disk takes hours; a stuck restic still ends.
TIMEOUT = 48 * 3600.0

INSTALL_RESTIC = (
    "restic is not installed: install it with `sudo apt install restic` (Debian, Ubuntu), "
    "`sudo dnf install restic` (Fedora) or from https://restic.net, "
    "or give its path with --restic"
)


@dataclass
class HelperRestic(Restic):
    """A Restic whose password may also come from a password command."""

    password_command: str = ""

    def env(self) -> dict[str, str]:
        """Return the environment of a restic call (password as a file or a command)."""
        env = super().env()
        if self.password_command:
            env["RESTIC_PASSWORD_FILE"] = ""
            env["RESTIC_PASSWORD_COMMAND"] = self.password_command
        return env


@dataclass(frozen=True)
class BackupSummary:
    """What `restic backup --json` reported at its end."""

    snapshot_id: str
    files: int
    bytes: int
    data_added: int


@dataclass(frozen=True)
class FileNode:
    """One regular file in a snapshot (from `restic ls --json`)."""

    path: str
    size: int
    mtime: datetime | None
    # False when restic's listing replaced bytes of the name that are not UTF-8.
    exact: bool = True


def parse_backup_summary(text: str) -> BackupSummary:
    """Given `restic backup --json` output, return its summary. Raise ValueError if none."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("message_type") == "summary":
            snapshot = message.get("snapshot_id")
            if not snapshot:
                raise ValueError("restic wrote no snapshot")
            return BackupSummary(
                snapshot_id=str(snapshot),
                files=int(message.get("total_files_processed", 0)),
                bytes=int(message.get("total_bytes_processed", 0)),
                data_added=int(message.get("data_added", 0)),
            )
    raise ValueError("no summary in the output of restic backup")


def parse_ls_files(text: str) -> list[FileNode]:
    """Given `restic ls --json SNAPSHOT` output, return its regular files.

    Raise ParseError naming the line if a line is not what restic prints.
    """
    files = []
    for entry in resticls.iter_ls(text):
        if isinstance(entry, resticls.Node) and entry.type == "file":
            mtime = (
                datetime.fromtimestamp(entry.mtime_ns / 1e9, UTC)
                if entry.mtime_ns is not None else None
            )
            files.append(FileNode(os.fsdecode(entry.path), entry.size, mtime, entry.exact))
    return files


def parse_ls_snapshot_id(text: str) -> str | None:
    """Given `restic ls --json SNAPSHOT` output, return the snapshot's full id, if shown.

    Raise ParseError naming the line if a line is not what restic prints.
    """
    listing = resticls.parse_ls(text)
    return listing.snapshot.id if listing.snapshot else None


def choose_sample(
    files: Sequence[FileNode], count: int, max_bytes: int, rng: random.Random
) -> list[FileNode]:
    """Given a snapshot's files, return up to `count` of them at random, within max_bytes."""
    # A name restic listed with replaced bytes cannot be named to restic or found on disk.
    order = [node for node in files if node.exact]
    rng.shuffle(order)
    chosen: list[FileNode] = []
    total = 0
    for node in order:
        if len(chosen) >= count:
            break
        if total + node.size > max_bytes:
            continue
        chosen.append(node)
        total += node.size
    return chosen


def include_pattern(path: str) -> str:
    """Return a restic --include pattern matching exactly this path (globs escaped)."""
    # restic matches each path component with Go's filepath.Match, where a backslash
    # makes the next character literal.
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in path)


def next_subset(current: int, subsets: int) -> int:
    """Return the read-data subset to check after `current` (1-based, wrapping)."""
    return current % subsets + 1


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_restic(
    repository: str,
    password_file: str,
    password_command: str = "",
    *,
    binary: str = "restic",
    cache_dir: str | None = None,
) -> HelperRestic:
    """Return the restic wrapper for one disk's repository."""
    return HelperRestic(
        repository=repository,
        password_file=password_file,
        binary=binary,
        cache_dir=cache_dir,
        timeout=TIMEOUT,
        password_command=password_command,
    )


def explain(error: ResticError, disk: str, *, needed: int | None = None, free: int | None = None,
            password_source: str = "") -> str:
    """Given a failed restic call on a disk, return one line the customer can act on."""
    text = str(error)
    lowered = text.lower()
    if "program not found" in lowered:
        return INSTALL_RESTIC
    if "no space left" in lowered or "disk quota" in lowered:
        return disk_full_message(disk, needed, free)
    if "read-only file system" in lowered:
        return read_only_message(disk)
    if error.kind == "wrong-password":
        where = f" (from {password_source})" if password_source else ""
        return f"disk {disk}: the password{where} does not open the backup on this disk"
    if error.kind == "no-repository":
        return f"disk {disk}: the backup on this disk is missing or damaged ({text})"
    if error.kind == "locked":
        return (
            f"disk {disk}: the backup is locked by another restic run; if none is running, "
            "unlock it with `restic -r <disk>/durability-backup unlock`"
        )
    if "input/output error" in lowered or "no such device" in lowered:
        return f"disk {disk}: read or write error on the disk ({text})"
    return f"disk {disk}: restic failed: {text}"


def disk_full_message(disk: str, needed: int | None, free: int | None) -> str:
    """Return the message for a full disk, saying how much room the copy needs."""
    detail = ""
    if needed is not None:
        detail = f"; the copy needs up to {format_bytes(needed)}"
        if free is not None:
            detail += f", {format_bytes(free)} is free"
    return (
        f"disk {disk} is full{detail}: free some space on it or enroll a bigger disk "
        "(the backups already on it are intact)"
    )


def read_only_message(disk: str) -> str:
    """Return the message for a disk mounted read-only."""
    return (
        f"disk {disk} is mounted read-only: unplug it and plug it in again, "
        "or remount it read-write, then retry"
    )


def tree_size(paths: Sequence[str]) -> tuple[int, int]:
    """Return (files, bytes) under the given paths (what a first copy needs at most)."""
    files = total = 0
    for path in paths:
        if os.path.isfile(path):
            files += 1
            total += os.path.getsize(path)
            continue
        for root, _dirs, names in os.walk(path):
            for name in names:
                try:
                    stat = os.lstat(os.path.join(root, name))
                except OSError:
                    continue
                files += 1
                total += stat.st_size
    return files, total


def free_bytes(path: str) -> int | None:
    """Return the bytes an unprivileged user may still write at path, or None."""
    try:
        stat = os.statvfs(path)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


__all__ = ["HelperError", "ResticError"]

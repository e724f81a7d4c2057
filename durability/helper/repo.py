"""The restic side of the helper: one repository per enrolled disk.

All calls go through the restic seam, `durability.restic.Restic` (supervised by
`durability.execute.supervise`), and its failures are classified there. The
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
from durability.helper.i18n import _, format_bytes
from durability.restic import (
    LOCKED,
    NO_REPOSITORY,
    NO_SPACE,
    WRONG_PASSWORD,
    Restic,
    ResticError,
)

TAG = "durability-helper"
# A copy of many gigabytes to a slow USB disk takes hours; a stuck restic still ends.
TIMEOUT = 48 * 3600.0

def install_restic_message() -> str:
    """Return the message for a missing restic program."""
    return _(
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
        return install_restic_message()
    if error.kind == NO_SPACE or "no space left" in lowered or "disk quota" in lowered:
        return disk_full_message(disk, needed, free)
    if "read-only file system" in lowered:
        return read_only_message(disk)
    if error.kind == WRONG_PASSWORD:
        if password_source:
            return _("disk {disk}: the password (from {source}) does not open the backup on "
                     "this disk").format(disk=disk, source=password_source)
        return _("disk {disk}: the password does not open the backup on this disk").format(
            disk=disk)
    if error.kind == NO_REPOSITORY:
        return _("disk {disk}: the backup on this disk is missing or damaged ({detail})").format(
            disk=disk, detail=text)
    if error.kind == LOCKED:
        return _(
            "disk {disk}: the backup is locked by another restic run; if none is running, "
            "unlock it with `restic -r <disk>/durability-backup unlock`"
        ).format(disk=disk)
    if "input/output error" in lowered or "no such device" in lowered:
        return _("disk {disk}: read or write error on the disk ({detail})").format(
            disk=disk, detail=text)
    return _("disk {disk}: restic failed: {detail}").format(disk=disk, detail=text)


def disk_full_message(disk: str, needed: int | None, free: int | None,
                      cleaned: bool | None = None) -> str:
    """Return the message for a full disk, saying how much room the copy needs.

    `cleaned` says whether the unfinished copy's data was removed again (None: not tried).
    """
    if needed is not None and free is not None:
        text = _("disk {disk} is full; the copy needs up to {needed}, {free} is free").format(
            disk=disk, needed=format_bytes(needed), free=format_bytes(free))
    elif needed is not None:
        text = _("disk {disk} is full; the copy needs up to {needed}").format(
            disk=disk, needed=format_bytes(needed))
    else:
        text = _("disk {disk} is full").format(disk=disk)
    if cleaned:
        after = _("the unfinished copy was removed again, so the disk is as before")
    elif cleaned is False:
        after = _("the unfinished copy could not be removed yet: free some space on the "
                  "disk and run copy again, which tidies it up")
    else:
        after = ""
    advice = _("free some space on it or enroll a bigger disk (the backups already on it "
               "are intact)")
    return f"{text}: {advice}" + (f"; {after}" if after else "")


def read_only_message(disk: str) -> str:
    """Return the message for a disk mounted read-only."""
    return _(
        "disk {disk} is mounted read-only: unplug it and plug it in again, "
        "or remount it read-write, then retry"
    ).format(disk=disk)


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

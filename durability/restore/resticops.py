"""The restic calls of a restore test: choose, list, restore, check packs.

Every call goes through the one restic seam, `durability.restic.Restic.run` (bounded,
killed with durability, failures classified there), with `--no-cache` (a shared cache
can hide a corrupted pack: restic 0.14 reads tree blobs from it instead of the
repository). The kinds a restore test judges differently are the seam's: a test that
could not start (UNKNOWN) or data that is wrong (`DAMAGED`, CRITICAL).
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from durability import restic as seam
from durability.errors import ParseError
from durability.execute import Completed
from durability.restic import (
    Restic,
    ResticError,
    ResticLock,
    ResticSnapshot,
    lock_is_stale,
    parse_file_errors,
    parse_snapshots,
)

# The seam's kinds, under the names the restore code uses. "data" failures are
# CRITICAL once restoring has begun; the others mean the test could not run (UNKNOWN).
KIND_PASSWORD = seam.WRONG_PASSWORD
KIND_LOCKED = seam.LOCKED
KIND_MISSING_REPOSITORY = seam.NO_REPOSITORY
KIND_NO_SNAPSHOT = seam.NOT_FOUND
KIND_NO_SPACE = seam.NO_SPACE
KIND_UNREACHABLE = seam.UNREACHABLE
KIND_TIMEOUT = seam.TIMEOUT
KIND_DATA = seam.DAMAGED
KIND_OTHER = seam.OTHER

# One exception for every restic failure; the restore code knows it by this name.
ResticFailure = ResticError


def classify(stderr: str, returncode: int | None = None) -> str:
    """Given restic's stderr (and exit code), return the kind of failure (the seam's)."""
    return seam.classify_error(returncode, stderr)


def failure_line(stderr: str) -> str:
    """Given restic's stderr, return the most telling single line (no stack traces)."""
    return seam.reason(stderr)


def describe_lock(stderr: str) -> str | None:
    """Given restic's lock conflict message, return who holds the lock and since when."""
    return seam.describe_lock_conflict(stderr)


def call(
    repo: Restic, args: Sequence[str], *, timeout: float | None = None, no_lock: bool = False,
    on_stdout: Callable[[str], None] | None = None,
    stop_when: Callable[[], str | None] | None = None,
    keep_stdout: bool = True,
) -> Completed:
    """Run `restic ARGS` on a repository; raise ResticFailure (classified) on failure.

    `no_lock` is for reads that need not hold the repository (a lock costs a write and
    a quarter second per call); the restore itself always takes its lock. `on_stdout`
    and `stop_when` are the seam's (`Restic.run`).
    """
    try:
        return repo.run(
            args, timeout=timeout, no_lock=no_lock, on_stdout=on_stdout, stop_when=stop_when,
            keep_stdout=keep_stdout,
        )
    except ResticError as error:
        if str(error).startswith("restic"):
            raise
        raise ResticError(
            f"restic {args[0]}: {error}", error.kind, error.returncode, error.stderr
        ) from error


def choose_snapshot(
    snapshots: Sequence[ResticSnapshot], which: str, now: datetime, rng: random.Random | None = None
) -> ResticSnapshot:
    """Given snapshots, return the one `which` names: latest, random, or an ID prefix.

    Snapshots dated more than 5 minutes in the future are never chosen by latest or
    random, and refused by ID. Raise ResticFailure (no-snapshot) if none fits.
    """
    future = now + timedelta(minutes=5)
    if which in ("latest", "random"):
        usable = [s for s in snapshots if s.time <= future]
        if not usable:
            extra = " (only future-dated ones)" if snapshots else ""
            raise ResticFailure(f"no snapshot to test{extra}", KIND_NO_SNAPSHOT)
        if which == "latest":
            return max(usable, key=lambda s: s.time)
        return (rng or random.SystemRandom()).choice(usable)
    matches = [s for s in snapshots if s.id.startswith(which.lower())]
    if not matches:
        raise ResticFailure(f"snapshot {which} not found", KIND_NO_SNAPSHOT)
    if len(matches) > 1:
        raise ResticFailure(f"snapshot ID {which} is ambiguous", KIND_NO_SNAPSHOT)
    chosen = matches[0]
    if chosen.time > future:
        raise ResticFailure(
            f"snapshot {chosen.short_id} is dated in the future ({chosen.time.isoformat()});"
            " refusing to test it",
            KIND_NO_SNAPSHOT,
        )
    return chosen


def list_snapshots(repo: Restic) -> list[ResticSnapshot]:
    """Given a repository, return its snapshots. Raise ResticFailure if it cannot."""
    return parse_snapshots(call(repo, ["snapshots", "--json"], no_lock=True).stdout)


def escape_pattern(path: str) -> str:
    """Given a path, return a restic include pattern matching exactly that path."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", path)


def parse_index_packs(text: str) -> set[str]:
    """Given `restic cat index ID` JSON, return the pack IDs it references."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ParseError(f"restic index: not JSON: {error}") from error
    return {str(pack["id"]) for pack in raw.get("packs") or ()}


_REMOTE_SCHEMES = ("s3:", "sftp:", "rest:", "b2:", "azure:", "gs:", "swift:", "rclone:")


def local_folder(repository: str) -> str | None:
    """Given a restic repository string, return its folder if it is a local repository."""
    if repository.startswith(_REMOTE_SCHEMES):
        return None
    folder = repository.removeprefix("local:")
    return folder if os.path.isdir(os.path.join(folder, "data")) else None


def _local_ids(folder: str, nested: bool) -> list[str]:
    """Return the file names (IDs) under a local repository folder (data/XX/ID or index/ID)."""
    names: list[str] = []
    for current, _dirs, files in os.walk(folder):
        if nested or current == folder:
            names.extend(name for name in files if re.fullmatch(r"[0-9a-f]{64}", name))
    return names


def list_packs(repo: Restic) -> set[str]:
    """Given a repository, return the IDs of the pack files it holds.

    A local repository's folder is listed directly: one restic start (and key
    derivation, half a second of CPU) saved.
    """
    folder = local_folder(repo.repository)
    if folder is not None:
        return set(_local_ids(os.path.join(folder, "data"), nested=True))
    return set(call(repo, ["list", "packs"], no_lock=True).stdout.split())


def list_indexes(repo: Restic) -> list[str]:
    """Given a repository, return the IDs of its index files (listed directly if local)."""
    folder = local_folder(repo.repository)
    if folder is not None:
        return sorted(_local_ids(os.path.join(folder, "index"), nested=False))
    return call(repo, ["list", "index"], no_lock=True).stdout.split()


def index_packs(repo: Restic, index_id: str) -> set[str]:
    """Given an index file, return the pack IDs it references."""
    return parse_index_packs(call(repo, ["cat", "index", index_id], no_lock=True).stdout)


def unlock_stale(repo: Restic) -> None:
    """Remove only stale locks (`restic unlock` without --remove-all)."""
    call(repo, ["unlock"])


def check_subset(repo: Restic, subset: str) -> Completed:
    """Run `restic check --read-data-subset SUBSET`; raise ResticFailure on errors."""
    return call(repo, ["check", "--read-data-subset", subset])


def rotating_subset(spec: str, now: datetime) -> str:
    """Given "1/7" (one part of seven), return the part for today: "n/7".

    A subset spec other than "1/N" (a percentage, a size) is returned as it is.
    """
    match = re.fullmatch(r"\s*1\s*/\s*(\d+)\s*", spec)
    if not match:
        return spec
    parts = int(match.group(1))
    day = int(now.timestamp() // 86400)
    return f"{day % parts + 1}/{parts}"


def password_file_usable(path: str) -> str | None:
    """Given a password file path, return a problem sentence or None if usable."""
    from durability.secrets import check_secret_file

    return check_secret_file(path, "password_file")


def describe_holder(lock: ResticLock, now: datetime) -> str:
    """Given a lock, return who holds it and for how long, in one phrase."""
    from durability.units import format_duration

    kind = "exclusive lock" if lock.exclusive else "lock"
    pid = f"PID {lock.pid} " if lock.pid is not None else ""
    age = format_duration((now - lock.time).total_seconds())
    return f"{kind} held by {pid}on {lock.hostname} by {lock.username} for {age}"


def held_locks(repo: Restic, now: datetime) -> tuple[list[str], bool]:
    """Given a repository, return descriptions of its live locks and whether stale ones exist.

    Raise ResticFailure if the locks cannot be listed.
    """
    import socket

    locks = repo.locks()
    hostname = socket.gethostname()
    live = [lock for lock in locks if not lock_is_stale(lock, now, hostname)]
    return [describe_holder(lock, now) for lock in live], len(live) < len(locks)


__all__ = [
    "KIND_DATA", "KIND_LOCKED", "KIND_MISSING_REPOSITORY", "KIND_NO_SNAPSHOT", "KIND_NO_SPACE",
    "KIND_OTHER", "KIND_PASSWORD", "KIND_TIMEOUT", "KIND_UNREACHABLE", "ResticFailure",
    "parse_file_errors",
]

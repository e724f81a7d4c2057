"""restic repositories: snapshots grouped as restic groups them, sizes, and stale locks.

A backup set is a host plus its paths (plus tags, if any). Sizes are restore sizes:
the `summary` block of restic 0.17 and newer where present, else `restic stats
--mode restore-size` of the newest and previous snapshot (restic 0.14). Nothing here
takes a lock, so a check never blocks the provider's own prune.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from durability.config.snapshots import SourceSettings
from durability.errors import ProbeError
from durability.model import isoformat_z
from durability.restic import Restic, ResticError, ResticLock, ResticSnapshot, lock_is_stale
from durability.s3client import read_secret
from durability.snapshots.evaluate import Policy
from durability.snapshots.records import BackupSet, Listing, Snapshot
from durability.units import format_duration

# restic itself treats a lock not refreshed for 30 minutes as stale.


def set_name(snapshot: ResticSnapshot) -> str:
    """Return the backup set of a snapshot: host:paths, plus [tags] when it has any."""
    name = f"{snapshot.hostname}:{','.join(sorted(snapshot.paths))}"
    if snapshot.tags:
        name += f"[{','.join(sorted(snapshot.tags))}]"
    return name


def group_snapshots(snapshots: Sequence[ResticSnapshot]) -> dict[str, list[ResticSnapshot]]:
    """Given snapshots, return them grouped by set, oldest first in each."""
    groups: dict[str, list[ResticSnapshot]] = {}
    for snapshot in sorted(snapshots, key=lambda s: s.time):
        groups.setdefault(set_name(snapshot), []).append(snapshot)
    return groups


def summary_size(snapshot: ResticSnapshot) -> int | None:
    """Return the restore size from a restic 0.17+ summary block, if there is one."""
    if snapshot.summary is None:
        return None
    value = snapshot.summary.get("total_bytes_processed")
    return int(value) if isinstance(value, int | float) else None


def describe_lock(lock: ResticLock, now: datetime) -> str:
    """Return one line naming a lock's holder and age."""
    kind = "exclusive" if lock.exclusive else "shared"
    pid = f" PID {lock.pid}" if lock.pid is not None else ""
    age = format_duration((now - lock.time).total_seconds())
    return (
        f"stale {kind} lock {lock.id[:8]} held by {lock.username or '?'}@"
        f"{lock.hostname or '?'}{pid} since {isoformat_z(lock.time)} ({age} old); "
        "if that process is gone, run `restic unlock`"
    )


class ResticSource:
    """A restic repository (local path, sftp, s3:..., rest:...)."""

    def __init__(
        self,
        settings: SourceSettings,
        policy: Policy,
        binary: str = "restic",
        restic_factory: Callable[..., Restic] = Restic,
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.policy = policy
        self.binary = binary
        self.restic_factory = restic_factory

    def restic(self) -> Restic:
        """Return the wrapper for this repository (S3 credentials from the secret file)."""
        settings = self.settings
        extra_env: dict[str, str] = {}
        if settings.access_key_id and settings.secret_access_key_file:
            extra_env["AWS_ACCESS_KEY_ID"] = settings.access_key_id
            extra_env["AWS_SECRET_ACCESS_KEY"] = read_secret(settings.secret_access_key_file)
        if settings.region:
            extra_env["AWS_DEFAULT_REGION"] = settings.region
        if settings.profile:
            extra_env["AWS_PROFILE"] = settings.profile
        return self.restic_factory(
            repository=settings.repository or "",
            password_file=settings.password_file or "",
            binary=self.binary,
            extra_env=extra_env,
            cacert=settings.ca_bundle,
            timeout=settings.timeout * 10,
        )

    def gather(self, now: datetime) -> Listing:
        """Return the repository's sets. Raise ProbeError naming restic's error."""
        restic = self.restic()
        try:
            version = restic.version()
            snapshots = restic.snapshots()
            groups = group_snapshots(snapshots)
            sets = {name: self._backup_set(restic, name, items) for name, items in groups.items()}
        except ResticError as error:
            raise ProbeError(f"restic repository {self.settings.repository}: {error}") from error
        lock_notes: list[str] = []
        try:
            locks = restic.locks()
        except ResticError as error:
            locks = []
            lock_notes.append(f"could not list locks: {error}")
        hostname = socket.gethostname()
        stale = [lock for lock in locks if lock_is_stale(lock, now, hostname)]
        facts: dict[str, Any] = {
            "repository": self.settings.repository,
            "restic_version": ".".join(str(n) for n in version),
            "locks": [
                {
                    "id": lock.id[:8],
                    "exclusive": lock.exclusive,
                    "hostname": lock.hostname,
                    "username": lock.username,
                    "pid": lock.pid,
                    "time": isoformat_z(lock.time),
                    "age_seconds": (now - lock.time).total_seconds(),
                }
                for lock in locks
            ],
        }
        notes = tuple(lock_notes) + tuple(
            f"lock {lock.id[:8]} held by {lock.username}@{lock.hostname} since "
            f"{isoformat_z(lock.time)}"
            for lock in locks
            if lock not in stale
        )
        return Listing(
            source=self.name,
            kind="restic",
            sets=sets,
            immutable=None,
            immutable_detail="a restic repository cannot prove it by itself (use a bucket "
            "with Object Lock and check it as an s3 source)",
            encrypted=True,
            problems=tuple(describe_lock(lock, now) for lock in stale),
            notes=notes,
            facts=facts,
        )

    def _backup_set(self, restic: Restic, name: str, items: list[ResticSnapshot]) -> BackupSet:
        newest = items[-2:]
        sized = []
        for item in newest:
            size = summary_size(item)
            if size is None:
                size = restic.stats(item.id, "restore-size").total_size
            sized.append(
                Snapshot(id=item.short_id, time=item.time, size_bytes=size, encrypted=True)
            )
        first = items[-1]
        return BackupSet(
            name=name,
            snapshots=tuple(sized),
            count=len(items),
            facts={"host": first.hostname, "paths": list(first.paths), "tags": list(first.tags)},
        )

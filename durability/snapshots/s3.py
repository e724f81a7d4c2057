"""Backups stored as objects on any S3-compatible provider.

The listing is paginated and streamed: each backup set keeps only its two newest
backups and its counts, so memory grows with the number of sets, never with the
number of objects. Where versioning is on, versions are listed: the current version of
each key is the backup, delete markers and older versions are counted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from durability.config.snapshots import SourceSettings
from durability.errors import ProbeError
from durability.s3client import build_s3_client, describe_aws_error
from durability.snapshots.evaluate import Policy
from durability.snapshots.records import BackupSet, Listing, Snapshot

PAGE_SIZE = 1000


@dataclass(frozen=True)
class ObjectEntry:
    """One object (or current version) as the listing gives it."""

    key: str
    time: datetime
    size: int
    checksum: bool = False


class KeyGrouper:
    """Maps a key (relative to the prefix) to (set, backup) by the `group_by` pattern."""

    def __init__(self, pattern: str | None) -> None:
        self.regex = re.compile(pattern) if pattern else None
        groups = self.regex.groupindex if self.regex else {}
        self.set_group: int | str = (
            "set"
            if "set" in groups
            else (1 if self.regex is not None and self.regex.groups >= 1 and not groups else 0)
        )
        self.backup_group = "backup" if "backup" in groups else None

    def group(self, key: str) -> tuple[str, str] | None:
        """Given a relative key, return (set, backup id), or None when it does not match."""
        if self.regex is None:
            return "", key
        match = self.regex.search(key)
        if match is None:
            return None
        set_name = match.group(self.set_group) or ""
        backup = match.group(self.backup_group) if self.backup_group else None
        return set_name, backup if backup is not None else key


@dataclass
class _Backup:
    id: str
    time: datetime
    size: int = 0
    objects: int = 0


@dataclass
class SetAccumulator:
    """Running facts of one set: its two newest backups and counts (bounded memory).

    With backups of several objects (a `backup` group), each backup's totals are kept
    until the end: one entry per backup, not per object.
    """

    grouped: bool
    newest: list[_Backup] = field(default_factory=list)
    backups: dict[str, _Backup] = field(default_factory=dict)
    count: int = 0
    objects: int = 0
    checksummed: int = 0
    deleted: int = 0
    noncurrent: int = 0

    def add(self, backup_id: str, entry: ObjectEntry) -> None:
        """Add one object of backup `backup_id`."""
        self.objects += 1
        if entry.checksum:
            self.checksummed += 1
        if self.grouped:
            backup = self.backups.get(backup_id)
            if backup is None:
                backup = self.backups[backup_id] = _Backup(backup_id, entry.time)
            elif entry.time > backup.time:
                backup.time = entry.time
            backup.size += entry.size
            backup.objects += 1
            return
        self.count += 1
        item = _Backup(backup_id, entry.time, entry.size, 1)
        if len(self.newest) < 2:
            self.newest.append(item)
            self.newest.sort(key=lambda b: b.time)
        elif item.time > self.newest[0].time:
            self.newest[0] = item
            self.newest.sort(key=lambda b: b.time)

    def result(self, name: str) -> BackupSet:
        """Return the set's record."""
        if self.grouped:
            ordered = sorted(self.backups.values(), key=lambda b: b.time)
            count, newest = len(ordered), ordered[-2:]
        else:
            count, newest = self.count, self.newest
        snapshots = tuple(
            Snapshot(id=b.id, time=b.time, size_bytes=b.size, objects=b.objects) for b in newest
        )
        facts: dict[str, Any] = {
            "objects": self.objects,
            "checksums": "all"
            if self.checksummed == self.objects and self.objects
            else ("some" if self.checksummed else "none listed"),
        }
        if self.deleted or self.noncurrent:
            facts["delete_markers"] = self.deleted
            facts["noncurrent_versions"] = self.noncurrent
        return BackupSet(name=name, snapshots=snapshots, count=count, facts=facts)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def iter_objects(client: Any, bucket: str, prefix: str) -> Iterator[ObjectEntry]:
    """Yield every object under the prefix, page by page (ListObjectsV2)."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": PAGE_SIZE}
    ):
        for item in page.get("Contents", ()):
            yield ObjectEntry(
                item["Key"],
                _utc(item["LastModified"]),
                int(item.get("Size", 0)),
                bool(item.get("ChecksumAlgorithm")),
            )


def iter_versions(client: Any, bucket: str, prefix: str) -> Iterator[tuple[str, ObjectEntry]]:
    """Yield ("current" | "noncurrent" | "deleted", entry) for every version under the prefix."""
    paginator = client.get_paginator("list_object_versions")
    for page in paginator.paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": PAGE_SIZE}
    ):
        for item in page.get("Versions", ()):
            entry = ObjectEntry(
                item["Key"],
                _utc(item["LastModified"]),
                int(item.get("Size", 0)),
                bool(item.get("ChecksumAlgorithm")),
            )
            yield ("current" if item.get("IsLatest") else "noncurrent"), entry
        for item in page.get("DeleteMarkers", ()):
            if item.get("IsLatest"):
                yield "deleted", ObjectEntry(item["Key"], _utc(item["LastModified"]), 0)


SIDECAR_SUFFIXES = (".sha256",)


def is_sidecar(key: str) -> bool:
    """Return True for a checksum sidecar (`*.sha256`): never a snapshot by itself."""
    return key.lower().endswith(SIDECAR_SUFFIXES)


def _without_sidecars(
    entries: Iterator[tuple[str, ObjectEntry]], seen: Counter[str]
) -> Iterator[tuple[str, ObjectEntry]]:
    """Yield the entries that are not checksum sidecars, counting the sidecars in `seen`."""
    for state, entry in entries:
        if is_sidecar(entry.key):
            if state == "current":
                seen["count"] += 1
            continue
        yield state, entry


def group_entries(
    entries: Iterator[tuple[str, ObjectEntry]], prefix: str, pattern: str | None
) -> tuple[dict[str, SetAccumulator], int]:
    """Given listed entries, return the accumulated sets and the count of unmatched keys."""
    grouper = KeyGrouper(pattern)
    grouped = grouper.backup_group is not None
    sets: dict[str, SetAccumulator] = {}
    unmatched = 0
    strip = len(prefix)
    for state, entry in entries:
        found = grouper.group(entry.key[strip:])
        if found is None:
            unmatched += 1
            continue
        set_name, backup_id = found
        accumulator = sets.get(set_name)
        if accumulator is None:
            accumulator = sets[set_name] = SetAccumulator(grouped)
        if state == "current":
            accumulator.add(backup_id, entry)
        elif state == "deleted":
            accumulator.deleted += 1
        else:
            accumulator.noncurrent += 1
    return sets, unmatched


def _optional(call: Callable[[], Any], missing: tuple[str, ...]) -> Any:
    """Run a bucket-configuration call; None when the provider has no such configuration."""
    from botocore.exceptions import ClientError

    try:
        return call()
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in missing:
            return None
        if code in ("NotImplemented", "MethodNotAllowed", "501"):
            return NotImplemented
        raise


class S3Source:
    """An S3 bucket (and prefix) of backups; see the module docstring."""

    def __init__(
        self,
        settings: SourceSettings,
        policy: Policy,
        client_factory: Callable[[SourceSettings], Any] | None = None,
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.policy = policy
        self.client_factory = client_factory or build_s3_client

    @property
    def where(self) -> str:
        """Return the bucket and endpoint, for messages."""
        endpoint = self.settings.endpoint_url or "AWS S3"
        return f"bucket {self.settings.bucket!r} at {endpoint}"

    def gather(self, now: datetime) -> Listing:
        """Return the sets under the prefix. Raise ProbeError naming the provider's error."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self._gather()
        except (BotoCoreError, ClientError) as error:
            raise ProbeError(describe_aws_error(error, self.where)) from error

    def _gather(self) -> Listing:
        settings = self.settings
        bucket = settings.bucket or ""
        client = self.client_factory(settings)
        versioning_answer = client.get_bucket_versioning(Bucket=bucket)
        versioning = str(versioning_answer.get("Status") or "Disabled")
        facts: dict[str, Any] = {
            "bucket": bucket,
            "prefix": settings.prefix,
            "versioning": versioning,
        }
        immutable, immutable_detail = self._immutability(client, bucket, versioning, facts)
        encrypted = (
            self._encryption(client, bucket, facts) if self.policy.require_encrypted else None
        )
        if versioning in ("Enabled", "Suspended"):
            entries: Iterator[tuple[str, ObjectEntry]] = iter_versions(
                client, bucket, settings.prefix
            )
        else:
            entries = (("current", e) for e in iter_objects(client, bucket, settings.prefix))
        sidecars: Counter[str] = Counter()
        accumulators, unmatched = group_entries(
            _without_sidecars(entries, sidecars), settings.prefix, settings.group_by
        )
        notes: list[str] = []
        if sidecars["count"]:
            facts["checksum_sidecars"] = sidecars["count"]
        if unmatched:
            notes.append(f"{unmatched} object(s) under the prefix do not match group_by, ignored")
            facts["unmatched_objects"] = unmatched
        sets: Mapping[str, BackupSet] = {
            name: acc.result(name) for name, acc in accumulators.items()
        }
        if not sets:
            notes.append(f"no object under prefix {settings.prefix!r} of {self.where}")
        return Listing(
            source=self.name,
            kind="s3",
            sets=sets,
            immutable=immutable,
            immutable_detail=immutable_detail,
            encrypted=encrypted,
            notes=tuple(notes),
            facts=facts,
        )

    def _immutability(
        self, client: Any, bucket: str, versioning: str, facts: dict[str, Any]
    ) -> tuple[bool | None, str]:
        if not self.policy.require_immutable:
            return None, ""
        answer = _optional(
            lambda: client.get_object_lock_configuration(Bucket=bucket),
            ("ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound"),
        )
        if answer is NotImplemented:
            lock = None
        else:
            config = (answer or {}).get("ObjectLockConfiguration", {})
            lock = config.get("ObjectLockEnabled") == "Enabled"
            rule = config.get("Rule", {}).get("DefaultRetention")
            if rule:
                facts["object_lock_retention"] = dict(rule)
        facts["object_lock"] = lock
        if lock:
            return True, "Object Lock enabled"
        if versioning == "Enabled":
            return True, "versioning enabled (no Object Lock)"
        if lock is None:
            return None, "the provider does not support Object Lock and versioning is off"
        return False, f"bucket {bucket!r} has neither Object Lock nor versioning enabled"

    def _encryption(self, client: Any, bucket: str, facts: dict[str, Any]) -> bool | None:
        answer = _optional(
            lambda: client.get_bucket_encryption(Bucket=bucket),
            ("ServerSideEncryptionConfigurationNotFoundError",),
        )
        if answer is NotImplemented:
            facts["default_encryption"] = None
            return None
        rules = (answer or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
        algorithms = [
            r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules
        ]
        facts["default_encryption"] = next((a for a in algorithms if a), None)
        return bool(facts["default_encryption"])

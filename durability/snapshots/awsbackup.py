"""AWS Backup recovery points of a vault, one backup set per protected resource."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from durability.config.snapshots import SourceSettings
from durability.errors import ProbeError
from durability.s3client import build_client, describe_aws_error
from durability.snapshots.evaluate import Policy
from durability.snapshots.records import BackupSet, Listing, Snapshot

# Recovery point statuses that are a usable backup.
COMPLETE_STATUSES = ("COMPLETED", "AVAILABLE")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def to_snapshot(item: dict[str, Any]) -> Snapshot:
    """Given one recovery point entry, return its record (time: when it was created)."""
    status = str(item.get("Status", "UNKNOWN")).upper()
    size = item.get("BackupSizeInBytes")
    return Snapshot(
        id=str(item.get("RecoveryPointArn", "")).rsplit(":", 1)[-1] or "?",
        time=_utc(item["CreationDate"]),
        complete=status in COMPLETE_STATUSES,
        state=status.lower(),
        size_bytes=int(size) if size is not None else None,
        encrypted=item.get("IsEncrypted"),
    )


def build_sets(items: Sequence[dict[str, Any]]) -> dict[str, BackupSet]:
    """Given recovery points, return one set per resource (named by the resource ARN)."""
    by_resource: dict[str, list[Snapshot]] = {}
    types: dict[str, str] = {}
    for item in items:
        resource = str(item.get("ResourceArn", "?"))
        by_resource.setdefault(resource, []).append(to_snapshot(item))
        types[resource] = str(item.get("ResourceType", ""))
    sets = {}
    for resource, snapshots in by_resource.items():
        snapshots.sort(key=lambda s: s.time)
        complete = [s for s in snapshots if s.complete]
        newest_time = complete[-1].time if complete else None
        incomplete = tuple(
            s for s in snapshots if not s.complete and (newest_time is None or s.time > newest_time)
        )
        sets[resource] = BackupSet(
            name=resource,
            snapshots=tuple(complete[-2:]),
            count=len(complete),
            incomplete=incomplete,
            facts={
                "resource_arn": resource,
                "resource_type": types[resource],
                "statuses": sorted({s.state for s in snapshots}),
            },
        )
    return sets


class AwsBackupSource:
    """Recovery points of one AWS Backup vault (optionally of one resource)."""

    def __init__(
        self,
        settings: SourceSettings,
        policy: Policy,
        client_factory: Callable[[SourceSettings, str], Any] | None = None,
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.policy = policy
        self.client_factory = client_factory or build_client

    def gather(self, now: datetime) -> Listing:
        """Return one set per resource. Raise ProbeError naming AWS's error."""
        from botocore.exceptions import BotoCoreError, ClientError

        where = f"AWS Backup vault {self.settings.vault!r}"
        try:
            return self._gather()
        except (BotoCoreError, ClientError) as error:
            raise ProbeError(describe_aws_error(error, where)) from error

    def _gather(self) -> Listing:
        client = self.client_factory(self.settings, "backup")
        vault = self.settings.vault or ""
        arguments: dict[str, Any] = {"BackupVaultName": vault}
        if self.settings.resource_arn:
            arguments["ByResourceArn"] = self.settings.resource_arn
        items: list[dict[str, Any]] = []
        paginator = client.get_paginator("list_recovery_points_by_backup_vault")
        for page in paginator.paginate(**arguments):
            items.extend(page.get("RecoveryPoints", ()))
        immutable: bool | None = None
        detail = ""
        facts: dict[str, Any] = {"vault": vault}
        if self.policy.require_immutable:
            described = client.describe_backup_vault(BackupVaultName=vault)
            immutable = bool(described.get("Locked", False))
            facts["vault_locked"] = immutable
            detail = "vault lock on" if immutable else f"vault {vault!r} has no vault lock"
        sets = build_sets(items)
        if self.settings.resource_arn and self.settings.resource_arn not in sets:
            sets[self.settings.resource_arn] = BackupSet(
                name=self.settings.resource_arn,
                facts={"resource_arn": self.settings.resource_arn},
            )
        return Listing(
            source=self.name,
            kind="aws-backup",
            sets=sets,
            immutable=immutable,
            immutable_detail=detail,
            facts=facts,
        )

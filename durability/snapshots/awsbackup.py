"""AWS Backup recovery points of a vault, one backup set per protected resource."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from durability.config.snapshots import SourceSettings
from durability.errors import ProbeError
from durability.s3client import build_client, describe_aws_error
from durability.snapshots.evaluate import Policy
from durability.snapshots.records import BackupSet, Listing, Snapshot, backup_set

# Recovery point statuses that are a usable backup.
COMPLETE_STATUSES = ("COMPLETED", "AVAILABLE")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def to_snapshot(item: dict[str, Any]) -> Snapshot:
    """Given one recovery point entry, return its record (time: when it was created)."""
    status = str(item.get("Status", "UNKNOWN")).upper()
    # By vault the field is BackupSizeInBytes, by resource BackupSizeBytes.
    size = item.get("BackupSizeInBytes", item.get("BackupSizeBytes"))
    return Snapshot(
        id=str(item.get("RecoveryPointArn", "")).rsplit(":", 1)[-1] or "?",
        time=_utc(item["CreationDate"]),
        complete=status in COMPLETE_STATUSES,
        state=status.lower(),
        size_bytes=int(size) if size is not None else None,
        encrypted=(
            bool(item["IsEncrypted"])
            if "IsEncrypted" in item
            else (True if item.get("EncryptionKeyArn") else None)
        ),
    )


def build_sets(
    items: Sequence[dict[str, Any]], default_resource: str | None = None
) -> dict[str, BackupSet]:
    """Given recovery points, return one set per resource (named by the resource ARN).

    Points listed by resource carry no ResourceArn: they belong to `default_resource`.
    """
    by_resource: dict[str, list[Snapshot]] = {}
    types: dict[str, str] = {}
    for item in items:
        resource = str(item.get("ResourceArn") or default_resource or "?")
        by_resource.setdefault(resource, []).append(to_snapshot(item))
        types[resource] = str(item.get("ResourceType", ""))
    sets = {}
    for resource, snapshots in by_resource.items():
        sets[resource] = backup_set(
            resource,
            snapshots,
            {
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

        if self.settings.vault:
            where = f"AWS Backup vault {self.settings.vault!r}"
        else:
            where = f"AWS Backup recovery points of {self.settings.resource_arn}"
        try:
            return self._gather()
        except (BotoCoreError, ClientError) as error:
            raise ProbeError(describe_aws_error(error, where)) from error

    def _gather(self) -> Listing:
        client = self.client_factory(self.settings, "backup")
        vault = self.settings.vault or ""
        resource = self.settings.resource_arn
        items: list[dict[str, Any]] = []
        if vault:
            arguments: dict[str, Any] = {"BackupVaultName": vault}
            if resource:
                arguments["ByResourceArn"] = resource
            paginator = client.get_paginator("list_recovery_points_by_backup_vault")
        else:
            arguments = {"ResourceArn": resource}
            paginator = client.get_paginator("list_recovery_points_by_resource")
        for page in paginator.paginate(**arguments):
            items.extend(page.get("RecoveryPoints", ()))
        facts: dict[str, Any] = {"vault": vault or None}
        immutable, detail = self._vaults_locked(client, vault, items, facts)
        sets = build_sets(items, resource)
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

    def _vaults_locked(
        self, client: Any, vault: str, items: Sequence[dict[str, Any]], facts: dict[str, Any]
    ) -> tuple[bool | None, str]:
        """Return whether every vault holding the points has a vault lock (when required)."""
        if not self.policy.require_immutable:
            return None, ""
        vaults = (
            [vault]
            if vault
            else sorted({str(i["BackupVaultName"]) for i in items if i.get("BackupVaultName")})
        )
        if not vaults:
            return None, "no vault holds a recovery point"
        unlocked = [
            name
            for name in vaults
            if not client.describe_backup_vault(BackupVaultName=name).get("Locked", False)
        ]
        facts["vault_locked"] = not unlocked
        if unlocked:
            return False, f"vault {', '.join(repr(n) for n in unlocked)} has no vault lock"
        return True, "vault lock on"

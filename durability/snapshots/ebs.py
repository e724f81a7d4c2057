"""EBS snapshots of EC2 volumes, by volume id or by volume tags (OwnerIds=self)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from durability.config.snapshots import SourceSettings
from durability.errors import ProbeError
from durability.s3client import build_client, describe_aws_error
from durability.snapshots.evaluate import Policy
from durability.snapshots.records import BackupSet, Listing, Snapshot, backup_set

GIB = 1024**3
# describe_snapshots accepts at most 200 values per filter.
FILTER_CHUNK = 200


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def parse_progress(text: Any) -> float | None:
    """Given EC2's progress ("80%"), return 0.8; None when absent or odd."""
    try:
        return float(str(text).rstrip("%")) / 100
    except (TypeError, ValueError):
        return None


def to_snapshot(item: dict[str, Any]) -> Snapshot:
    """Given one describe_snapshots entry, return its record (size: the volume's GiB)."""
    state = str(item.get("State", "unknown"))
    started = item["StartTime"]
    started = started.astimezone(UTC) if started.tzinfo else started.replace(tzinfo=UTC)
    size = item.get("VolumeSize")
    return Snapshot(
        id=str(item["SnapshotId"]),
        time=started,
        complete=state == "completed",
        state=state,
        size_bytes=int(size) * GIB if size is not None else None,
        encrypted=bool(item.get("Encrypted", False)),
        progress=parse_progress(item.get("Progress")),
    )


def build_sets(volume_ids: Sequence[str], items: Sequence[dict[str, Any]]) -> dict[str, BackupSet]:
    """Given the volumes and their snapshots, return one set per volume (none: empty set)."""
    by_volume: dict[str, list[Snapshot]] = {v: [] for v in volume_ids}
    for item in items:
        volume = str(item.get("VolumeId", ""))
        if volume in by_volume:
            by_volume[volume].append(to_snapshot(item))
    sets = {}
    for volume, snapshots in by_volume.items():
        sets[volume] = backup_set(
            volume,
            snapshots,
            {
                "volume_id": volume,
                "error_snapshots": sum(s.state == "error" for s in snapshots),
            },
        )
    return sets


class EbsSource:
    """EC2 EBS snapshots of the configured volumes."""

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
        """Return one set per volume. Raise ProbeError naming AWS's error."""
        from botocore.exceptions import BotoCoreError, ClientError

        where = f"EC2 in {self.settings.region or 'the default region'}"
        try:
            return self._gather()
        except (BotoCoreError, ClientError) as error:
            raise ProbeError(describe_aws_error(error, where)) from error

    def volumes(self, client: Any) -> list[str]:
        """Return the configured volume ids plus those carrying every configured tag."""
        volumes = list(self.settings.volume_ids)
        if self.settings.tags:
            filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in self.settings.tags.items()]
            paginator = client.get_paginator("describe_volumes")
            for page in paginator.paginate(Filters=filters):
                for volume in page.get("Volumes", ()):
                    if volume["VolumeId"] not in volumes:
                        volumes.append(volume["VolumeId"])
        return volumes

    def _gather(self) -> Listing:
        client = self.client_factory(self.settings, "ec2")
        volumes = self.volumes(client)
        items: list[dict[str, Any]] = []
        paginator = client.get_paginator("describe_snapshots")
        for chunk in _chunks(volumes, FILTER_CHUNK):
            for page in paginator.paginate(
                OwnerIds=["self"], Filters=[{"Name": "volume-id", "Values": chunk}]
            ):
                items.extend(page.get("Snapshots", ()))
        notes = []
        if not volumes:
            tags = ", ".join(f"{k}={v}" for k, v in self.settings.tags.items())
            notes.append(f"no volume carries the tags {tags}")
        return Listing(
            source=self.name,
            kind="ebs",
            sets=build_sets(volumes, items),
            immutable=None,
            immutable_detail="EBS snapshots can be deleted by the account (use AWS Backup "
            "with a locked vault for immutability)",
            notes=tuple(notes),
            facts={"region": self.settings.region},
        )

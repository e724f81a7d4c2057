"""EBS (moto server, botocore Stubber) and AWS Backup (Stubber) sources."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from durability.config.snapshots import SnapshotSettings, SourceSettings
from durability.model import Status, now_utc
from durability.snapshots.awsbackup import AwsBackupSource
from durability.snapshots.command import gather_one
from durability.snapshots.ebs import EbsSource
from durability.snapshots.evaluate import Policy, evaluate_listing
from tests.conftest import CliResult
from tests.support.seaweed import free_ports

Cli = Callable[..., CliResult]
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    [port] = free_ports(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def ec2(moto_url: str) -> Any:
    return boto3.client("ec2", endpoint_url=moto_url, region_name="eu-west-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def ebs_toml(moto_url: str, secret: Path, **extra: Any) -> str:
    lines = ["[[snapshots.sources]]", 'name = "ebs-prod"', 'kind = "ebs"',
             f'endpoint_url = "{moto_url}"', 'region = "eu-west-1"',
             'access_key_id = "testing"', f'secret_access_key_file = "{secret}"', "retries = 1"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items() if not isinstance(v, dict)]
    for key, value in extra.items():
        if isinstance(value, dict):
            lines.append(f"{key} = {{ " + ", ".join(
                f'{k} = "{v}"' for k, v in value.items()) + " }")
    return "\n".join(lines) + "\n"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "aws-secret"
    path.write_text("testing\n")
    return path


def test_snapshots_ebs_moto_fresh_missing_and_tagged(
    cli: Cli, write_config: Callable[[str], Path], ec2: Any, moto_url: str, secret: Path
) -> None:
    backed = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=8)["VolumeId"]
    bare = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=8)["VolumeId"]
    tagged = ec2.create_volume(
        AvailabilityZone="eu-west-1a", Size=4,
        TagSpecifications=[{"ResourceType": "volume",
                            "Tags": [{"Key": "backup", "Value": "nightly-t1"}]}],
    )["VolumeId"]
    ec2.create_snapshot(VolumeId=backed)
    ec2.create_snapshot(VolumeId=tagged)
    config = write_config(ebs_toml(moto_url, secret, volume_ids=[backed, bare],
                                   tags={"backup": "nightly-t1"}))
    result = cli("--config", config, "snapshots", "--format", "json")
    doc = json.loads(result.stdout)
    results = {r["target"]: r for r in doc["results"]}
    assert results[f"ebs-prod/{backed}"]["status"] == "OK"
    assert results[f"ebs-prod/{backed}"]["data"]["newest_size_bytes"] == 8 * 1024**3
    assert results[f"ebs-prod/{bare}"]["status"] == "CRITICAL"
    assert results[f"ebs-prod/{bare}"]["summary"] == "no snapshot at all"
    assert results[f"ebs-prod/{tagged}"]["status"] == "OK"
    assert result.code == 2
    later = (now_utc() + timedelta(days=3)).isoformat()
    stale = cli("--config", config, "snapshots", "--source", "ebs-prod", "--now", later)
    assert stale.code == 2
    assert "stale" in stale.stdout


def test_snapshots_ebs_unencrypted_when_required_warning(
    cli: Cli, write_config: Callable[[str], Path], ec2: Any, moto_url: str, secret: Path
) -> None:
    volume = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=1)["VolumeId"]
    ec2.create_snapshot(VolumeId=volume)
    config = write_config(ebs_toml(moto_url, secret, volume_ids=[volume],
                                   require_encrypted=True))
    result = cli("--config", config, "snapshots")
    assert result.code == 1
    assert "not encrypted" in result.stdout


def test_snapshots_ebs_endpoint_down_unknown(
    cli: Cli, write_config: Callable[[str], Path], secret: Path
) -> None:
    [port] = free_ports(1)
    config = write_config(ebs_toml(f"http://127.0.0.1:{port}", secret, volume_ids=["vol-1"]))
    result = cli("--config", config, "snapshots", "--format", "nagios")
    assert result.code == 3
    assert result.stdout.startswith("DURABILITY UNKNOWN")
    assert "cannot connect" in result.stdout


def stubbed(service: str) -> tuple[Any, Stubber]:
    client = boto3.client(service, region_name="eu-west-1", aws_access_key_id="x",
                          aws_secret_access_key="y")
    return client, Stubber(client)


def ebs_item(snapshot: str, volume: str, hours_ago: float, state: str = "completed",
             size: int = 10, progress: str = "100%", encrypted: bool = True) -> dict[str, Any]:
    return {"SnapshotId": snapshot, "VolumeId": volume, "State": state, "Progress": progress,
            "StartTime": NOW - timedelta(hours=hours_ago), "VolumeSize": size,
            "Encrypted": encrypted, "OwnerId": "123456789012", "Description": ""}


def test_gather_ebs_stubbed_pages_owner_self_and_states() -> None:
    client, stub = stubbed("ec2")
    volumes = ["vol-a", "vol-b", "vol-c"]
    expected = {"OwnerIds": ["self"], "Filters": [{"Name": "volume-id", "Values": volumes}]}
    stub.add_response("describe_snapshots", {
        "Snapshots": [ebs_item("snap-1", "vol-a", 30, size=20),
                      ebs_item("snap-2", "vol-a", 3, size=10),
                      ebs_item("snap-3", "vol-b", 5, state="error", progress="40%")],
        "NextToken": "page2",
    }, expected)
    stub.add_response("describe_snapshots", {
        "Snapshots": [ebs_item("snap-4", "vol-a", 1, state="pending", progress="80%"),
                      ebs_item("snap-5", "vol-c", 2, state="pending", progress="10%")],
    }, {**expected, "NextToken": "page2"})
    settings = SourceSettings(name="ebs", kind="ebs", volume_ids=tuple(volumes))
    with stub:
        listing = EbsSource(settings, Policy(), lambda s, service: client).gather(NOW)
    stub.assert_no_pending_responses()
    results = {r.target: r for r in evaluate_listing(listing, Policy(max_shrink=0.3), NOW)}
    vol_a = results["ebs/vol-a"]
    assert vol_a.status is Status.WARNING  # 20 GiB -> 10 GiB
    assert vol_a.data["count"] == 2
    assert vol_a.data["incomplete"][0]["state"] == "pending"
    assert vol_a.data["incomplete"][0]["progress"] == 0.8
    assert results["ebs/vol-b"].status is Status.CRITICAL
    assert "only incomplete snapshots (1 error)" in results["ebs/vol-b"].summary
    assert results["ebs/vol-c"].status is Status.CRITICAL
    assert "1 pending" in results["ebs/vol-c"].summary


def test_gather_ebs_access_denied_unknown_naming_code() -> None:
    client, stub = stubbed("ec2")
    stub.add_client_error("describe_snapshots", service_error_code="UnauthorizedOperation",
                          service_message="You are not authorized to perform this operation.",
                          http_status_code=403)
    settings = SourceSettings(name="ebs", kind="ebs", volume_ids=("vol-a",))
    with stub:
        source = EbsSource(settings, Policy(), lambda s, service: client)
        with pytest.raises(Exception) as caught:
            source.gather(NOW)
    assert "UnauthorizedOperation" in str(caught.value)


def point(resource: str, hours_ago: float, status: str = "COMPLETED",
          size: int = 1000) -> dict[str, Any]:
    return {"RecoveryPointArn": f"arn:aws:backup:eu-west-1:1:recovery-point:{resource}-{hours_ago}",
            "ResourceArn": resource, "ResourceType": "EBS", "Status": status,
            "CreationDate": NOW - timedelta(hours=hours_ago), "BackupSizeInBytes": size,
            "IsEncrypted": True, "BackupVaultName": "Default"}


def test_gather_aws_backup_statuses_per_resource() -> None:
    client, stub = stubbed("backup")
    db, web, old = "arn:aws:rds:db", "arn:aws:ec2:web", "arn:aws:ec2:old"
    stub.add_response("list_recovery_points_by_backup_vault", {
        "RecoveryPoints": [point(db, 26.5), point(db, 2), point(web, 1, "PARTIAL")],
        "NextToken": "n",
    }, {"BackupVaultName": "Default"})
    stub.add_response("list_recovery_points_by_backup_vault", {
        "RecoveryPoints": [point(web, 50, "EXPIRED"), point(old, 40)],
    }, {"BackupVaultName": "Default", "NextToken": "n"})
    stub.add_response("describe_backup_vault", {"BackupVaultName": "Default", "Locked": True},
                      {"BackupVaultName": "Default"})
    settings = SourceSettings(name="vault", kind="aws-backup", vault="Default")
    policy = Policy(require_immutable=True, require_encrypted=True)
    with stub:
        listing = AwsBackupSource(settings, policy, lambda s, service: client).gather(NOW)
    results = {r.target: r for r in evaluate_listing(listing, policy, NOW)}
    assert results[f"vault/{db}"].status is Status.OK
    assert results[f"vault/{db}"].data["count"] == 2
    assert results[f"vault/{web}"].status is Status.CRITICAL
    assert "1 expired, 1 partial" in results[f"vault/{web}"].summary
    assert results[f"vault/{old}"].status is Status.CRITICAL
    assert "stale" in results[f"vault/{old}"].summary
    assert listing.immutable is True


def test_gather_aws_backup_unlocked_vault_and_resource_without_points() -> None:
    client, stub = stubbed("backup")
    stub.add_response("list_recovery_points_by_backup_vault", {"RecoveryPoints": []},
                      {"BackupVaultName": "Default", "ByResourceArn": "arn:x"})
    stub.add_response("describe_backup_vault", {"BackupVaultName": "Default", "Locked": False},
                      {"BackupVaultName": "Default"})
    settings = SourceSettings(name="vault", kind="aws-backup", vault="Default",
                              resource_arn="arn:x")
    policy = Policy(require_immutable=True)
    with stub:
        listing = AwsBackupSource(settings, policy, lambda s, service: client).gather(NOW)
    [result] = evaluate_listing(listing, policy, NOW)
    assert result.target == "vault/arn:x"
    assert result.status is Status.CRITICAL


def test_gather_one_aws_backup_missing_vault_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    client, stub = stubbed("backup")
    stub.add_client_error("list_recovery_points_by_backup_vault",
                          service_error_code="ResourceNotFoundException",
                          service_message="Backup vault Nope does not exist",
                          http_status_code=400)
    import durability.snapshots.awsbackup as module

    monkeypatch.setattr(module, "build_client", lambda s, service: client)
    settings = SourceSettings(name="vault", kind="aws-backup", vault="Nope")
    with stub:
        gathered = gather_one(settings, SnapshotSettings(), NOW)
    assert gathered.listing is None
    assert gathered.error is not None
    assert "Backup vault Nope does not exist" in gathered.error


def test_gather_aws_backup_by_resource_without_vault() -> None:
    client, stub = stubbed("backup")
    resource = "arn:aws:rds:eu-west-1:1:db:main"
    fresh = point(resource, 3)
    fresh.pop("ResourceArn")
    fresh.pop("ResourceType")
    fresh["BackupSizeBytes"] = fresh.pop("BackupSizeInBytes")
    fresh["BackupVaultName"] = "Unlocked"
    fresh.pop("IsEncrypted")
    fresh["EncryptionKeyArn"] = "arn:aws:kms:eu-west-1:1:key/k"
    stub.add_response("list_recovery_points_by_resource", {"RecoveryPoints": [fresh]},
                      {"ResourceArn": resource})
    stub.add_response("describe_backup_vault", {"BackupVaultName": "Unlocked", "Locked": False},
                      {"BackupVaultName": "Unlocked"})
    settings = SourceSettings(name="db", kind="aws-backup", resource_arn=resource)
    policy = Policy(require_immutable=True)
    with stub:
        listing = AwsBackupSource(settings, policy, lambda s, service: client).gather(NOW)
    [result] = evaluate_listing(listing, policy, NOW)
    assert result.target == f"db/{resource}"
    assert result.data["newest_size_bytes"] == 1000
    assert result.status is Status.WARNING
    assert "'Unlocked' has no vault lock" in result.summary


def test_run_aws_backup_needs_vault_or_resource(cli: Cli,
                                                write_config: Callable[[str], Path]) -> None:
    config = write_config('[[snapshots.sources]]\nname = "v"\nkind = "aws-backup"\n')
    result = cli("--config", config, "snapshots")
    assert result.code == 3
    assert "kind 'aws-backup' needs vault or resource_arn" in result.stderr


def test_snapshots_ebs_tags_matching_no_volume_critical(
    cli: Cli, write_config: Callable[[str], Path], moto_url: str, secret: Path
) -> None:
    config = write_config(ebs_toml(moto_url, secret, tags={"backup": "never-used-tag"}))
    result = cli("--config", config, "snapshots", "--format", "json")
    doc = json.loads(result.stdout)
    [only] = doc["results"]
    assert result.code == 2
    assert only["target"] == "ebs-prod"
    assert "no volume carries the tags backup=never-used-tag" in only["details"]

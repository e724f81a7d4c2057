"""Restore tests of S3 object backups and of a restic repository on S3 (real SeaweedFS)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from durability.execute import run
from durability.restore.s3restore import download
from tests.conftest import CliResult
from tests.restore.conftest import Repo, scratch_leftovers

Cli = Callable[..., CliResult]

pytestmark = pytest.mark.slow


@pytest.fixture
def s3_config(
    seaweedfs: Any, write_config: Callable[[str], Path], tmp_path: Path
) -> Callable[..., Path]:
    """Return a function writing a config with one s3 source on SeaweedFS."""

    def write(bucket: str, prefix: str = "backups/", endpoint: str | None = None) -> Path:
        return write_config(
            f'[restore]\nscratch_dir = "{tmp_path / "scratch"}"\nreserve = "1MiB"\n'
            "[[snapshots.sources]]\n"
            f'name = "dumps"\nkind = "s3"\nbucket = "{bucket}"\nprefix = "{prefix}"\n'
            f'endpoint_url = "{endpoint or seaweedfs.endpoint_url}"\n'
            f'access_key_id = "{seaweedfs.access_key_id}"\n'
            f'secret_access_key_file = "{seaweedfs.secret_file}"\n'
            'addressing_style = "path"\n'
        )

    return write


def _tar_gz(files: dict[str, bytes], manifest: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        entries = dict(files)
        if manifest:
            entries["SHA256SUMS"] = "".join(
                f"{hashlib.sha256(body).hexdigest()}  {name}\n" for name, body in files.items()
            ).encode()
        for name, body in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def _data(result: CliResult) -> dict[str, Any]:
    return json.loads(result.stdout)["results"][0]


def test_restore_test_s3_single_part_verified_by_etag(
    cli: Cli, seaweedfs: Any, s3_config: Callable[..., Path], tmp_path: Path
) -> None:
    bucket = seaweedfs.make_bucket()
    seaweedfs.client().put_object(Bucket=bucket, Key="backups/site.sql", Body=os.urandom(300_000))
    result = cli("--config", s3_config(bucket), "restore-test", "--format", "json")
    assert result.code == 0, result.stdout
    data = _data(result)["data"]
    assert data["snapshot_id"] == "backups/site.sql"
    assert data["checksum"] == "the MD5 ETag of a single-part upload"
    assert data["bytes_restored"] == 300_000
    assert data["files_verified"] == 1
    assert scratch_leftovers(tmp_path) == []


def test_restore_test_s3_sidecar_manifest_used_and_corruption_critical(
    cli: Cli, seaweedfs: Any, s3_config: Callable[..., Path], tmp_path: Path
) -> None:
    bucket = seaweedfs.make_bucket()
    client = seaweedfs.client()
    original = os.urandom(200_000)
    client.put_object(Bucket=bucket, Key="backups/a.bin", Body=original)
    client.put_object(
        Bucket=bucket, Key="backups/a.bin.sha256",
        Body=f"{hashlib.sha256(original).hexdigest()}  a.bin\n".encode(),
    )
    # Multipart upload: no usable ETag, so the sidecar is the reference.
    upload = client.create_multipart_upload(Bucket=bucket, Key="backups/a.bin")
    part = client.upload_part(
        Bucket=bucket, Key="backups/a.bin", UploadId=upload["UploadId"], PartNumber=1,
        Body=original,
    )
    client.complete_multipart_upload(
        Bucket=bucket, Key="backups/a.bin", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    config = s3_config(bucket)
    result = cli("--config", config, "restore-test", "--format", "json")
    assert result.code == 0, result.stdout
    assert _data(result)["data"]["checksum"] == "the .sha256 sidecar manifest"
    # The stored object changes under the manifest: corruption.
    damaged = bytearray(original)
    damaged[1000] ^= 0xFF
    client.put_object(Bucket=bucket, Key="backups/a.bin", Body=bytes(damaged))
    result = cli("--config", config, "restore-test", "--format", "json")
    assert result.code == 2, result.stdout
    assert "differs from the .sha256 sidecar manifest" in _data(result)["summary"]
    assert scratch_leftovers(tmp_path) == []


def test_restore_test_s3_sha256_checksum_preferred_when_stored(
    cli: Cli, seaweedfs: Any, s3_config: Callable[..., Path]
) -> None:
    bucket = seaweedfs.make_bucket()
    client = seaweedfs.client()
    client.put_object(
        Bucket=bucket, Key="backups/c.bin", Body=os.urandom(50_000), ChecksumAlgorithm="SHA256"
    )
    head = client.head_object(Bucket=bucket, Key="backups/c.bin", ChecksumMode="ENABLED")
    result = cli("--config", s3_config(bucket), "restore-test", "--format", "json")
    assert result.code == 0, result.stdout
    expected = (
        "the object's SHA-256 checksum" if head.get("ChecksumSHA256")
        else "the MD5 ETag of a single-part upload"
    )
    assert _data(result)["data"]["checksum"] == expected


def test_restore_test_s3_tar_members_verified(
    cli: Cli, seaweedfs: Any, s3_config: Callable[..., Path]
) -> None:
    bucket = seaweedfs.make_bucket()
    body = _tar_gz({"www/index.html": b"<h1>hi</h1>", "db/dump.sql": os.urandom(70_000)})
    seaweedfs.client().put_object(Bucket=bucket, Key="backups/site.tar.gz", Body=body)
    result = cli("--config", s3_config(bucket), "restore-test", "--format", "json")
    assert result.code == 0, result.stdout
    data = _data(result)["data"]
    assert data["files_expected"] == 4  # the archive and its three members
    assert data["files_verified"] == 3  # the archive (ETag) and two members (SHA256SUMS)


def test_restore_test_s3_tar_member_wrong_critical(
    cli: Cli, seaweedfs: Any, s3_config: Callable[..., Path]
) -> None:
    bucket = seaweedfs.make_bucket()
    files = {"www/index.html": b"<h1>hi</h1>"}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        manifest = f"{hashlib.sha256(b'something else').hexdigest()}  www/index.html\n".encode()
        for name, content in {**files, "SHA256SUMS": manifest}.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    seaweedfs.client().put_object(Bucket=bucket, Key="backups/site.tar", Body=buffer.getvalue())
    result = cli("--config", s3_config(bucket), "restore-test", "--format", "json")
    assert result.code == 2, result.stdout
    assert "www/index.html" in _data(result)["summary"]


def test_restore_test_s3_truncated_tar_gz_critical(
    cli: Cli, seaweedfs: Any, s3_config: Callable[..., Path]
) -> None:
    bucket = seaweedfs.make_bucket()
    body = _tar_gz({"db/dump.sql": os.urandom(200_000)})
    seaweedfs.client().put_object(Bucket=bucket, Key="backups/db.tgz", Body=body[: len(body) // 2])
    result = cli("--config", s3_config(bucket), "restore-test", "--format", "json")
    assert result.code == 2, result.stdout
    assert "archive unreadable" in _data(result)["summary"]


def test_restore_test_s3_no_checksum_warning(
    cli: Cli, seaweedfs: Any, s3_config: Callable[..., Path]
) -> None:
    bucket = seaweedfs.make_bucket()
    client = seaweedfs.client()
    upload = client.create_multipart_upload(Bucket=bucket, Key="backups/x.bin")
    part = client.upload_part(
        Bucket=bucket, Key="backups/x.bin", UploadId=upload["UploadId"], PartNumber=1,
        Body=os.urandom(10_000),
    )
    client.complete_multipart_upload(
        Bucket=bucket, Key="backups/x.bin", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    result = cli("--config", s3_config(bucket), "restore-test", "--format", "json")
    assert result.code == 1, result.stdout
    assert "no stored checksum" in _data(result)["summary"]


def test_restore_test_s3_named_key_missing_unknown(
    cli: Cli, seaweedfs: Any, s3_config: Callable[..., Path]
) -> None:
    bucket = seaweedfs.make_bucket()
    seaweedfs.client().put_object(Bucket=bucket, Key="backups/a", Body=b"x")
    result = cli(
        "--config", s3_config(bucket), "restore-test", "--snapshot", "nope", "--format", "json"
    )
    assert result.code == 3
    assert "object nope not found" in _data(result)["summary"]


def test_restore_test_s3_unreachable_endpoint_unknown(
    cli: Cli, s3_config: Callable[..., Path], tmp_path: Path
) -> None:
    from tests.support.seaweed import free_ports

    endpoint = f"http://127.0.0.1:{free_ports(1)[0]}"
    result = cli(
        "--config", s3_config("bucket", endpoint=endpoint), "restore-test", "--format", "json"
    )
    assert result.code == 3, result.stdout
    assert "cannot connect" in _data(result)["summary"]
    assert scratch_leftovers(tmp_path) == []


def test_restore_test_s3_missing_bucket_unknown(
    cli: Cli, s3_config: Callable[..., Path]
) -> None:
    result = cli("--config", s3_config("no-such-bucket-here"), "restore-test", "--format", "json")
    assert result.code == 3, result.stdout
    assert "NoSuchBucket" in _data(result)["summary"]


def test_download_large_object_parallel_ranges_identical(
    seaweedfs: Any, tmp_path: Path
) -> None:
    bucket = seaweedfs.make_bucket()
    body = os.urandom(5 * 1024 * 1024 + 123)
    client = seaweedfs.client()
    client.put_object(Bucket=bucket, Key="big", Body=body)
    seen: list[int] = []
    target = tmp_path / "big"
    written = download(client, bucket, "big", len(body), str(target), seen.append,
                       part_size=1024 * 1024, workers=3)
    assert written == len(body) == sum(seen)
    assert target.read_bytes() == body


def _restic_on_s3(seaweedfs: Any, small_template: Repo, tmp_path: Path) -> tuple[str, str]:
    bucket = seaweedfs.make_bucket()
    repository = seaweedfs.restic_repository(bucket)
    env = {**seaweedfs.restic_env(), "RESTIC_REPOSITORY": repository,
           "RESTIC_PASSWORD_FILE": str(small_template.password_file)}
    run(["restic", "--no-cache", "init"], env=env, check=True, timeout=120)
    run(["restic", "--no-cache", "backup", str(small_template.data_dir)], env=env, check=True,
        timeout=300)
    return bucket, repository


def test_restore_test_restic_on_seaweedfs_clean_then_deleted_pack_critical(
    cli: Cli, seaweedfs: Any, small_template: Repo, write_config: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    bucket, repository = _restic_on_s3(seaweedfs, small_template, tmp_path)
    config = write_config(
        f'[restore]\nscratch_dir = "{tmp_path / "scratch"}"\nreserve = "1MiB"\n'
        "[[snapshots.sources]]\n"
        f'name = "s3-restic"\nkind = "restic"\nrepository = "{repository}"\n'
        f'password_file = "{small_template.password_file}"\n'
        f'access_key_id = "{seaweedfs.access_key_id}"\n'
        f'secret_access_key_file = "{seaweedfs.secret_file}"\n'
    )
    result = cli("--config", config, "restore-test", "--format", "json")
    assert result.code == 0, result.stdout
    assert _data(result)["data"]["files_verified"] == 24
    assert seaweedfs.secret_access_key not in result.stdout + result.stderr
    client = seaweedfs.client()
    packs = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="repo/data/")
             ["Contents"]]
    client.delete_object(Bucket=bucket, Key=packs[0])
    result = cli("--config", config, "restore-test", "--format", "json")
    assert result.code == 2, result.stdout
    assert "missing from the repository" in _data(result)["summary"]
    assert scratch_leftovers(tmp_path) == []


@pytest.mark.parametrize("blob_type", ["data", "tree"])
def test_restore_test_restic_on_seaweedfs_corrupted_pack_critical(
    cli: Cli, seaweedfs: Any, small_template: Repo, write_config: Callable[[str], Path],
    tmp_path: Path, blob_type: str,
) -> None:
    bucket, repository = _restic_on_s3(seaweedfs, small_template, tmp_path)
    env = {**seaweedfs.restic_env(), "RESTIC_REPOSITORY": repository,
           "RESTIC_PASSWORD_FILE": str(small_template.password_file)}
    pack_id = ""
    for index_id in run(["restic", "--no-cache", "list", "index"], env=env, check=True
                        ).stdout.split():
        index = json.loads(run(["restic", "--no-cache", "cat", "index", index_id], env=env,
                               check=True).stdout)
        for pack in index["packs"]:
            if any(blob["type"] == blob_type for blob in pack["blobs"]):
                pack_id = pack["id"]
    key = f"repo/data/{pack_id[:2]}/{pack_id}"
    client = seaweedfs.client()
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[min(200, len(body) - 1)] ^= 0xFF
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    config = write_config(
        f'[restore]\nscratch_dir = "{tmp_path / "scratch"}"\nreserve = "1MiB"\n'
        "[[snapshots.sources]]\n"
        f'name = "s3-restic"\nkind = "restic"\nrepository = "{repository}"\n'
        f'password_file = "{small_template.password_file}"\n'
        f'access_key_id = "{seaweedfs.access_key_id}"\n'
        f'secret_access_key_file = "{seaweedfs.secret_file}"\n'
    )
    result = cli("--config", config, "restore-test", "--format", "json")
    assert result.code == 2, result.stdout
    # restic 0.14 names the damage; 0.18.0 crashes in its tree walker, which is said so.
    summary = _data(result)["summary"]
    assert ("ciphertext verification failed" in summary
            or "restic crashed while reading the snapshot's trees" in summary
            or "cannot be read: restic crashed" in summary), summary
    assert "github.com" not in summary and ".go:" not in summary, summary
    assert scratch_leftovers(tmp_path) == []

"""restic sources through `durability snapshots`, with Debian's real restic."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from durability.model import now_utc
from durability.restic import parse_snapshots
from durability.snapshots.resticrepo import group_snapshots, summary_size
from tests.conftest import CliResult
from tests.snapshots.conftest import ResticRepo
from tests.support.seaweed import SeaweedS3

Cli = Callable[..., CliResult]


def restic_toml(repository: str, password_file: Path | str, name: str = "web-restic",
                **extra: Any) -> str:
    lines = ["[[snapshots.sources]]", f'name = "{name}"', 'kind = "restic"',
             f'repository = "{repository}"', f'password_file = "{password_file}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def stamp(hours_ago: float) -> str:
    return (now_utc() - timedelta(hours=hours_ago)).strftime("%Y-%m-%d %H:%M:%S")


def run_json(cli: Cli, config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("--config", config, "snapshots", "--format", "json", *args)
    assert "Traceback" not in result.stderr
    return result.code, json.loads(result.stdout)


def by_target(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["target"]: r for r in doc["results"]}


def test_snapshots_restic_sets_fresh_stale_shrunk(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo
) -> None:
    restic_repo.backup(stamp(30), host="web1", size=10_000)
    restic_repo.backup(stamp(2), host="web1", size=3_000)       # shrank 70%
    restic_repo.backup(stamp(50), host="db1", folder="db")       # stale
    restic_repo.backup(stamp(1), host="mail", folder="mail", tags=("daily",))
    config = write_config(restic_toml(restic_repo.repository, restic_repo.password_file,
                                      max_shrink="30%"))
    code, doc = run_json(cli, config)
    results = by_target(doc)
    www = next(t for t in results if t.startswith("web-restic/web1:"))
    db = next(t for t in results if t.startswith("web-restic/db1:"))
    mail = next(t for t in results if t.startswith("web-restic/mail:"))
    assert www.endswith("/www")
    assert mail.endswith("/mail[daily]")
    assert results[www]["status"] == "WARNING"
    assert "shrank 70%" in results[www]["summary"]
    assert results[www]["data"]["newest_size_bytes"] == 3_000
    assert results[www]["data"]["previous_size_bytes"] == 10_000
    assert results[www]["data"]["count"] == 2
    assert results[www]["data"]["source"] == "web-restic"
    assert results[www]["data"]["restic_version"].startswith("0.")
    assert results[db]["status"] == "CRITICAL"
    assert results[mail]["status"] == "OK"
    assert code == 2


def test_snapshots_restic_future_snapshot_warning(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo
) -> None:
    restic_repo.backup(stamp(1))
    restic_repo.backup(stamp(-3))
    config = write_config(restic_toml(restic_repo.repository, restic_repo.password_file))
    code, doc = run_json(cli, config)
    [result] = doc["results"]
    assert result["status"] == "WARNING"
    assert "dated in the future" in result["summary"]
    assert code == 1


def test_snapshots_restic_wrong_password_unknown(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo, tmp_path: Path
) -> None:
    restic_repo.backup(stamp(1))
    bad = tmp_path / "bad"
    bad.write_text("wrong-password-value\n")
    config = write_config(restic_toml(restic_repo.repository, bad))
    code, doc = run_json(cli, config)
    assert code == 3
    [result] = doc["results"]
    assert result["target"] == "web-restic"
    assert "wrong repository password" in result["summary"]
    assert "wrong-password-value" not in json.dumps(doc)


def test_snapshots_restic_missing_repository_unknown(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo, tmp_path: Path
) -> None:
    config = write_config(restic_toml(str(tmp_path / "gone"), restic_repo.password_file))
    code, doc = run_json(cli, config)
    assert code == 3
    assert "no restic repository" in doc["results"][0]["summary"]


@pytest.mark.slow
def test_snapshots_restic_stale_lock_warning_names_holder(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo
) -> None:
    restic_repo.backup(stamp(1))
    restic_repo.stale_exclusive_lock()
    config = write_config(restic_toml(restic_repo.repository, restic_repo.password_file))
    code, doc = run_json(cli, config)
    results = by_target(doc)
    lock = results["web-restic/locks"]
    assert lock["status"] == "WARNING"
    assert "stale exclusive lock" in lock["summary"]
    assert "PID" in lock["summary"] and "restic unlock" in lock["summary"]
    assert code == 1


def test_snapshots_restic_unexpected_json_unknown(
    cli: Cli, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    fake = tmp_path / "restic"
    fake.write_text('#!/bin/sh\nif [ "$1" = version ]; then echo "restic 0.14.0"; exit 0; fi\n'
                    'echo "{\\"not\\": \\"a list\\"}"\n')
    fake.chmod(0o755)
    config = write_config(
        f'[snapshots]\nrestic = "{fake}"\n'
        + restic_toml(str(tmp_path / "repo"), tmp_path / "pw")
    )
    code, doc = run_json(cli, config)
    assert code == 3
    assert "unexpected output of restic cat config" in doc["results"][0]["summary"]


@pytest.mark.slow
def test_snapshots_restic_s3_backend_on_seaweedfs(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo,
    seaweedfs_https: SeaweedS3,
) -> None:
    bucket = seaweedfs_https.make_bucket()
    repository = seaweedfs_https.restic_repository(bucket)
    restic_repo.repository = repository
    restic_repo.env.update(seaweedfs_https.restic_env(), RESTIC_REPOSITORY=repository)
    restic_repo.flags = ["--cacert", str(seaweedfs_https.ca_bundle)]
    restic_repo.restic("init")
    restic_repo.backup(stamp(3), size=2048)
    config = write_config(restic_toml(
        repository, restic_repo.password_file, access_key_id=seaweedfs_https.access_key_id,
        secret_access_key_file=seaweedfs_https.secret_file, ca_bundle=seaweedfs_https.ca_bundle,
        region="us-east-1",
    ))
    result = cli("--config", config, "snapshots", "--format", "json")
    doc = json.loads(result.stdout)
    assert result.code == 0, doc
    [only] = doc["results"]
    assert only["data"]["newest_size_bytes"] == 2048
    assert seaweedfs_https.secret_access_key not in result.stdout + result.stderr


def test_group_snapshots_newer_summary_block_gives_size() -> None:
    text = json.dumps([
        {"id": "a" * 64, "short_id": "aaaaaaaa", "time": "2026-11-25T10:00:00.5+01:00",
         "hostname": "h", "paths": ["/b", "/a"], "tags": None,
         "summary": {"total_bytes_processed": 777}},
    ])
    [snapshot] = parse_snapshots(text)
    assert summary_size(snapshot) == 777
    assert list(group_snapshots([snapshot])) == ["h:/a,/b"]


@pytest.mark.slow
def test_snapshots_restic_s3_untrusted_certificate_unknown(
    cli: Cli, write_config: Callable[[str], Path], seaweedfs_https: SeaweedS3, tmp_path: Path
) -> None:
    bucket = seaweedfs_https.make_bucket()
    password = tmp_path / "pw"
    password.write_text("pw\n")
    config = write_config(restic_toml(
        seaweedfs_https.restic_repository(bucket), password,
        access_key_id=seaweedfs_https.access_key_id,
        secret_access_key_file=seaweedfs_https.secret_file,
    ))
    code, doc = run_json(cli, config)
    assert code == 3
    assert "TLS failure" in doc["results"][0]["summary"]

"""Faults of real restic repositories through `durability snapshots`, on both restic versions.

Each test builds its fault on a real repository: a damaged snapshot file, a replaced
repository, a collapsed backup, damaged tree data behind a warm cache, an unreachable
S3 backend.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CliResult, ResticBinary
from tests.snapshots.conftest import ResticRepo
from tests.snapshots.test_restic_source import by_target, restic_toml, run_json, stamp
from tests.support.seaweed import SeaweedS3

Cli = Callable[..., CliResult]


def flip_byte(path: Path, offset: int = 40) -> None:
    """Flip one byte of a repository file (restic writes them read-only)."""
    path.chmod(0o600)
    body = bytearray(path.read_bytes())
    body[min(offset, len(body) - 1)] ^= 0xFF
    path.write_bytes(bytes(body))


def newest_snapshot_file(repo: ResticRepo) -> Path:
    ids = json.loads(repo.restic("--no-cache", "snapshots", "--json").stdout)
    newest = max(ids, key=lambda s: s["time"])["id"]
    return Path(repo.repository) / "snapshots" / newest


def tree_pack(repo: ResticRepo) -> Path:
    for index_id in repo.restic("--no-cache", "list", "index").stdout.split():
        index = json.loads(repo.restic("--no-cache", "cat", "index", index_id).stdout)
        for pack in index["packs"]:
            if any(blob["type"] == "tree" for blob in pack["blobs"]):
                return Path(repo.repository) / "data" / pack["id"][:2] / pack["id"]
    raise AssertionError("no tree pack")


@pytest.fixture
def warm_cache(restic_repo: ResticRepo, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make durability's restic use the cache the backups filled (as on a backup host)."""
    cache = Path(restic_repo.env["RESTIC_CACHE_DIR"])
    monkeypatch.setenv("RESTIC_CACHE_DIR", str(cache))
    return cache


def test_damaged_newest_snapshot_file_critical_for_its_set(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo, warm_cache: Path
) -> None:
    restic_repo.backup(stamp(5), host="web1")
    restic_repo.backup(stamp(4), host="db1", folder="db")
    restic_repo.backup(stamp(1), host="web1")
    config = write_config(restic_toml(restic_repo.repository, restic_repo.password_file))
    code, doc = run_json(cli, config)
    assert code == 0, doc
    # restic itself reads the damaged file from its warm cache and lists it.
    flip_byte(newest_snapshot_file(restic_repo))
    assert len(json.loads(restic_repo.restic("snapshots", "--json").stdout)) == 3
    code, doc = run_json(cli, config)
    results = by_target(doc)
    web = next(r for t, r in results.items() if t.startswith("web-restic/web1:"))
    db = next(r for t, r in results.items() if t.startswith("web-restic/db1:"))
    assert code == 2
    assert web["status"] == "CRITICAL"
    assert "damaged snapshot" in web["summary"] and "data loss" in web["summary"]
    assert db["status"] == "OK", db


def test_damaged_snapshot_file_without_history_critical_for_source(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo, warm_cache: Path
) -> None:
    restic_repo.backup(stamp(5))
    restic_repo.backup(stamp(1))
    flip_byte(newest_snapshot_file(restic_repo))
    config = write_config(restic_toml(restic_repo.repository, restic_repo.password_file))
    code, doc = run_json(cli, config)
    [result] = doc["results"]
    assert code == 2
    assert result["status"] == "CRITICAL"
    assert "its set is unknown" in result["summary"]
    # The one readable snapshot is still counted; the damaged one is never dropped quietly.
    assert result["data"]["count"] == 1


def test_truncated_snapshot_file_critical(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo, warm_cache: Path
) -> None:
    restic_repo.backup(stamp(1))
    path = newest_snapshot_file(restic_repo)
    path.chmod(0o600)
    path.write_bytes(path.read_bytes()[:20])
    config = write_config(restic_toml(restic_repo.repository, restic_repo.password_file))
    code, doc = run_json(cli, config)
    assert code == 2, doc
    assert all(r["status"] == "CRITICAL" for r in doc["results"])
    assert "damaged snapshot" in doc["summary"]


def _replace_repository(repo: ResticRepo) -> None:
    """Put a new repository (same password, host and paths, almost no data) in its place."""
    shutil.rmtree(repo.repository)
    repo.restic("init")
    repo.backup(stamp(0.5), size=11)


def test_replaced_repository_critical_until_acknowledged(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo
) -> None:
    restic_repo.backup(stamp(2), size=5_000_000)
    config = write_config(restic_toml(restic_repo.repository, restic_repo.password_file,
                                      max_shrink="off"))
    code, doc = run_json(cli, config)
    assert code == 0, doc
    first_id = doc["results"][0]["data"]["repository_id"]
    _replace_repository(restic_repo)
    code, doc = run_json(cli, config)
    [result] = doc["results"]
    assert code == 2
    assert result["status"] == "CRITICAL"
    assert "repository replaced" in result["summary"]
    assert first_id[:8] in result["summary"]
    assert "durability snapshots ack web-restic" in result["summary"]
    # Still CRITICAL on the next run: nothing forgets it by itself.
    assert run_json(cli, config)[0] == 2
    acked = cli("--config", config, "snapshots", "ack", "web-restic")
    assert acked.code == 0, acked.stderr
    assert f"replaces {first_id[:8]}" in acked.stdout
    code, doc = run_json(cli, config)
    assert code == 0, doc
    assert doc["results"][0]["data"]["repository_id"] != first_id


def test_snapshots_ack_unknown_or_non_restic_source_fails_clearly(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo
) -> None:
    config = write_config(restic_toml(restic_repo.repository, restic_repo.password_file)
                          + '[[snapshots.sources]]\nname = "b"\nkind = "s3"\nbucket = "x"\n')
    missing = cli("--config", config, "snapshots", "ack", "nope")
    assert missing.code == 3
    assert "no such snapshot source: nope" in missing.stderr
    other = cli("--config", config, "snapshots", "ack", "b")
    assert other.code == 3
    assert "only restic sources" in other.stderr


def test_collapsed_newest_snapshot_warning_with_defaults(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo
) -> None:
    restic_repo.backup(stamp(25), size=100_000)
    restic_repo.backup(stamp(1), size=0)  # one empty file
    config = write_config(restic_toml(restic_repo.repository, restic_repo.password_file))
    code, doc = run_json(cli, config)
    [result] = doc["results"]
    assert code == 1, doc
    assert result["status"] == "WARNING"
    assert "newest snapshot holds no data" in result["summary"]
    assert result["data"]["newest_size_bytes"] == 0


def test_collapsed_to_no_files_warning_even_with_shrink_off(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo
) -> None:
    restic_repo.backup(stamp(25), size=100_000)
    (restic_repo.data / "www" / "payload.bin").unlink()
    restic_repo.restic("backup", "-q", "--host", "web1", "--time", stamp(1),
                       str(restic_repo.data / "www"))
    config = write_config(restic_toml(restic_repo.repository, restic_repo.password_file,
                                      max_shrink="off"))
    code, doc = run_json(cli, config)
    assert code == 1, doc
    assert "newest snapshot holds no data" in doc["results"][0]["summary"]


def test_shrink_beyond_default_half_warning(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo
) -> None:
    restic_repo.backup(stamp(25), size=100_000)
    restic_repo.backup(stamp(1), size=40_000)
    config = write_config(restic_toml(restic_repo.repository, restic_repo.password_file))
    code, doc = run_json(cli, config)
    assert code == 1, doc
    assert "shrank 60%" in doc["results"][0]["summary"]
    assert "limit 50%" in doc["results"][0]["summary"]


def test_damaged_tree_behind_warm_cache_found_by_default_check(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo, warm_cache: Path
) -> None:
    restic_repo.backup(stamp(2))
    flip_byte(tree_pack(restic_repo), offset=20)
    # The warm cache hides it from restic's listing and sizes.
    assert restic_repo.restic("stats", "--json", "latest").returncode == 0
    config = write_config(restic_toml(restic_repo.repository, restic_repo.password_file))
    code, doc = run_json(cli, config)
    [result] = doc["results"]
    assert code == 2, doc
    assert "restic check found damage" in result["summary"]
    assert "ciphertext verification failed" in result["summary"]
    assert result["data"]["check"]["outcome"] == "damaged"
    # The next run checks again (the last check was not clean) and stays CRITICAL.
    code, doc = run_json(cli, config)
    assert code == 2
    assert "restic check found damage" in doc["results"][0]["summary"]


def test_clean_check_not_repeated_within_its_interval(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo
) -> None:
    restic_repo.backup(stamp(2))
    config = write_config(restic_toml(restic_repo.repository, restic_repo.password_file))
    code, doc = run_json(cli, config)
    assert code == 0, doc
    assert doc["results"][0]["data"]["check"]["outcome"] == "clean"
    code, doc = run_json(cli, config)
    check = doc["results"][0]["data"]["check"]
    assert "outcome" not in check
    assert check["last_outcome"] == "clean"
    # A day later it is due again.
    later = cli("--config", config, "snapshots", "--format", "json", "--now",
                _hours_later(23))
    assert json.loads(later.stdout)["results"][0]["data"]["check"]["outcome"] == "clean"


def _hours_later(hours: float) -> str:
    from datetime import timedelta

    from durability.model import now_utc

    return (now_utc() + timedelta(hours=hours)).isoformat()


def test_damaged_index_file_found_by_check(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo, warm_cache: Path
) -> None:
    restic_repo.backup(stamp(2))
    [index] = list((Path(restic_repo.repository) / "index").iterdir())
    flip_byte(index, offset=30)
    config = write_config(restic_toml(restic_repo.repository, restic_repo.password_file))
    code, doc = run_json(cli, config)
    assert code == 2, doc
    assert "damage" in doc["summary"]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung backend)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


@pytest.mark.slow
def test_unreachable_s3_backend_unknown_within_timeout(
    cli: Cli, write_config: Callable[[str], Path], seaweedfs: SeaweedS3, tmp_path: Path,
    restic_binary: ResticBinary,
) -> None:
    # restic 0.14 gives up at once; 0.18 would retry for 15 minutes.
    from tests.support.seaweed import free_ports

    [port] = free_ports(1)
    password = tmp_path / "pw"
    password.write_text("pw\n")
    config = write_config(restic_toml(
        f"s3:http://127.0.0.1:{port}/bucket/repo", password,
        access_key_id=seaweedfs.access_key_id, secret_access_key_file=seaweedfs.secret_file,
        timeout="3s",
    ))
    code, doc = run_json(cli, config)
    assert code == 3, doc
    assert "cannot reach the repository's storage" in doc["results"][0]["summary"]


@pytest.mark.slow
def test_hung_s3_backend_unknown_within_timeout(
    cli: Cli, write_config: Callable[[str], Path], seaweedfs: SeaweedS3, tmp_path: Path,
    silent_server: int, restic_binary: ResticBinary,
) -> None:
    password = tmp_path / "pw"
    password.write_text("pw\n")
    config = write_config(restic_toml(
        f"s3:http://127.0.0.1:{silent_server}/bucket/repo", password,
        access_key_id=seaweedfs.access_key_id, secret_access_key_file=seaweedfs.secret_file,
        timeout="2s",
    ))
    code, doc = run_json(cli, config)
    assert code == 3, doc
    summary = doc["results"][0]["summary"]
    assert "timed out" in summary or "cannot reach" in summary, summary



def test_snapshots_ack_unreadable_repository_fails_and_records_nothing(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo, tmp_path: Path
) -> None:
    config = write_config(restic_toml(str(tmp_path / "gone"), restic_repo.password_file))
    result = cli("--config", config, "snapshots", "ack", "web-restic")
    assert result.code == 3
    assert "cannot read the repository id of web-restic" in result.stderr
    assert "no restic repository at this location" in result.stderr


def test_snapshots_bad_max_shrink_is_config_error(
    cli: Cli, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    config = write_config(restic_toml(str(tmp_path / "r"), tmp_path / "pw", max_shrink="lots"))
    result = cli("--config", config, "snapshots", "--format", "json")
    assert result.code == 3
    assert "max_shrink" in result.stderr + result.stdout


@pytest.mark.slow
def test_damaged_snapshot_object_on_seaweedfs_critical_for_its_set(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo,
    seaweedfs: SeaweedS3, warm_cache: Path,
) -> None:
    bucket = seaweedfs.make_bucket()
    repository = seaweedfs.restic_repository(bucket)
    restic_repo.repository = repository
    restic_repo.env.update(seaweedfs.restic_env(), RESTIC_REPOSITORY=repository)
    restic_repo.restic("init")
    restic_repo.backup(stamp(5))
    restic_repo.backup(stamp(1))
    config = write_config(restic_toml(
        repository, restic_repo.password_file, access_key_id=seaweedfs.access_key_id,
        secret_access_key_file=seaweedfs.secret_file, region=seaweedfs.region,
    ))
    code, doc = run_json(cli, config)
    assert code == 0, doc
    newest = max(json.loads(restic_repo.restic("--no-cache", "snapshots", "--json").stdout),
                 key=lambda s: s["time"])["id"]
    client = seaweedfs.client()
    key = f"repo/snapshots/{newest}"
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[40] ^= 0xFF
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    code, doc = run_json(cli, config)
    [result] = doc["results"]
    assert code == 2, doc
    assert "damaged snapshot" in result["summary"] and newest[:8] in result["summary"]
    assert result["data"]["count"] == 1


@pytest.mark.slow
def test_check_takes_no_lock_so_it_runs_beside_an_exclusive_lock(
    cli: Cli, write_config: Callable[[str], Path], restic_repo: ResticRepo
) -> None:
    restic_repo.backup(stamp(1))
    restic_repo.stale_exclusive_lock()
    locks = sorted(p.name for p in (Path(restic_repo.repository) / "locks").iterdir())
    config = write_config(restic_toml(restic_repo.repository, restic_repo.password_file))
    code, doc = run_json(cli, config)
    results = by_target(doc)
    [backup_set] = [r for t, r in results.items() if t.endswith("/www")]
    assert backup_set["data"]["check"]["outcome"] == "clean", backup_set
    # The check neither waited for the lock nor added or removed one.
    assert sorted(p.name for p in (Path(restic_repo.repository) / "locks").iterdir()) == locks
    assert code == 1  # the stale lock's WARNING

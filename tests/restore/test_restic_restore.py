"""Restore tests against real local restic repositories (restic 0.14)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from durability.execute import run
from tests.conftest import CliResult
from tests.restore.conftest import Repo, scratch_leftovers

Cli = Callable[..., CliResult]


def _json(result: CliResult) -> dict:
    return json.loads(result.stdout)


def test_restore_test_clean_snapshot_ok_with_timings(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = restore_config(small_repo)
    result = cli("--config", config, "restore-test", "--format", "json")
    assert result.code == 0, result.stdout + result.stderr
    doc = _json(result)
    data = doc["results"][0]["data"]
    assert doc["status"] == "OK"
    assert data["snapshot_id"].startswith(small_repo.snapshot_id)
    assert data["files_expected"] == data["files_restored"] == data["files_verified"] == 24
    assert data["bytes_restored"] > 1_000_000
    assert data["mismatches"] == []
    assert set(data["seconds"]) >= {"list", "restore", "verify", "cleanup", "total"}
    assert data["bytes_per_second"] > 0
    assert data["projected_full_restore_seconds"] > 0
    assert data["cleanup"] == "removed"
    assert data["live_files_compared"] == 24
    assert scratch_leftovers(tmp_path) == []


def test_restore_test_corrupted_data_pack_critical(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path], tmp_path: Path
) -> None:
    small_repo.corrupt(small_repo.packs("data")[0], offset=5000)
    result = cli("--config", restore_config(small_repo), "restore-test", "--format", "json")
    assert result.code == 2, result.stdout + result.stderr
    doc = _json(result)
    assert doc["status"] == "CRITICAL"
    assert "ciphertext verification failed" in doc["summary"]
    mismatches = doc["results"][0]["data"]["mismatches"]
    assert mismatches and all(m["problem"].startswith("not restored:") for m in mismatches)
    assert all(m["path"].startswith(str(small_repo.data_dir)) for m in mismatches)
    assert scratch_leftovers(tmp_path) == []


def test_restore_test_corrupted_tree_pack_critical(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path], tmp_path: Path
) -> None:
    small_repo.corrupt(small_repo.packs("tree")[0], offset=10)
    result = cli("--config", restore_config(small_repo), "restore-test", "--format", "json")
    assert result.code == 2, result.stdout + result.stderr
    summary = _json(result)["summary"]
    assert _json(result)["status"] == "CRITICAL"
    # restic 0.14 names the damage; 0.18.0 crashes in its tree walker, which is said so.
    summary = _json(result)["summary"]
    assert ("ciphertext verification failed" in summary
            or "authentication code does not match" in summary
            or "restic crashed while reading the snapshot's trees" in summary
            or "cannot be read: restic crashed" in summary), summary
    assert "github.com" not in summary and ".go:" not in summary, summary
    assert scratch_leftovers(tmp_path) == []


def test_restore_test_deleted_pack_critical_without_waiting(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path], tmp_path: Path
) -> None:
    pack = small_repo.packs("data")[0]
    pack.unlink()
    result = cli("--config", restore_config(small_repo), "restore-test", "--format", "json")
    assert result.code == 2, result.stdout + result.stderr
    doc = _json(result)
    assert "missing from the repository" in doc["summary"]
    assert pack.name[:12] in doc["summary"]
    # Stopped before restic's minute of retries: no restore phase was needed.
    assert "restore" not in doc["results"][0]["data"]["seconds"]
    assert scratch_leftovers(tmp_path) == []


def test_restore_test_wrong_password_unknown_one_line(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad-password"
    bad.write_text("not-the-password\n")
    repo = Repo(small_repo.path, bad, small_repo.data_dir, small_repo.snapshot_id)
    result = cli("--config", restore_config(repo), "restore-test", "--format", "nagios")
    assert result.code == 3
    first = result.stdout.splitlines()[0]
    assert first.startswith("DURABILITY UNKNOWN - ")
    assert "wrong password" in first
    assert "not-the-password" not in result.stdout + result.stderr
    assert scratch_leftovers(tmp_path) == []


def test_restore_test_missing_repository_unknown(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path], tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "nowhere", small_repo.password_file, small_repo.data_dir, "")
    result = cli("--config", restore_config(repo), "restore-test")
    assert result.code == 3
    assert "unable to open config file" in result.stdout
    assert scratch_leftovers(tmp_path) == []


def test_restore_test_unknown_snapshot_unknown(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path], tmp_path: Path
) -> None:
    result = cli(
        "--config", restore_config(small_repo), "restore-test", "--snapshot", "deadbeef",
        "--format", "json",
    )
    assert result.code == 3
    assert "snapshot deadbeef not found" in _json(result)["summary"]


def test_restore_test_future_snapshot_refused_and_skipped_by_latest(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path]
) -> None:
    done = run(
        ["restic", "--no-cache", "backup", "--json", "--time", "2099-01-01 00:00:00",
         str(small_repo.data_dir)],
        env=small_repo.env(), check=True,
    )
    future_id = next(
        json.loads(line)["snapshot_id"] for line in done.stdout.splitlines()
        if '"summary"' in line
    )
    config = restore_config(small_repo)
    refused = cli("--config", config, "restore-test", "--snapshot", future_id[:8])
    assert refused.code == 3
    assert "dated in the future" in refused.stdout
    latest = cli("--config", config, "restore-test", "--format", "json")
    assert latest.code == 0
    assert _json(latest)["results"][0]["data"]["snapshot_id"].startswith(small_repo.snapshot_id)


def test_restore_test_keep_leaves_tree_and_says_where(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path], tmp_path: Path
) -> None:
    result = cli(
        "--config", restore_config(small_repo), "restore-test", "--keep", "--format", "json"
    )
    assert result.code == 0
    kept = _json(result)["results"][0]["data"]["kept_path"]
    assert f"kept at {kept}" in result.stderr
    restored = Path(kept) / str(small_repo.data_dir).lstrip("/")
    assert sorted(p.name for p in restored.iterdir()) == sorted(
        p.name for p in small_repo.data_dir.iterdir()
    )
    assert (Path(kept).parent / "KEPT").exists()
    # A later test does not sweep a kept tree away.
    assert cli("--config", restore_config(small_repo), "restore-test").code == 0
    assert Path(kept).exists()


def test_restore_test_sample_restores_only_n_files(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path]
) -> None:
    result = cli(
        "--config", restore_config(small_repo), "restore-test", "--sample", "5",
        "--format", "json",
    )
    assert result.code == 0, result.stdout
    data = _json(result)["results"][0]["data"]
    assert data["mode"] == "sample"
    assert data["files_expected"] == data["files_verified"] == 5
    assert data["full_size_bytes"] > data["bytes_restored"]


def test_restore_test_live_file_changed_since_snapshot_reported_apart(
    cli: Cli, small_template: Repo, tmp_path: Path, restore_config: Callable[..., Path]
) -> None:
    data = tmp_path / "live"
    shutil.copytree(small_template.data_dir, data)
    repo_path = tmp_path / "repo2"
    env = {"RESTIC_REPOSITORY": str(repo_path),
           "RESTIC_PASSWORD_FILE": str(small_template.password_file)}
    run(["restic", "--no-cache", "init"], env=env, check=True)
    run(["restic", "--no-cache", "backup", str(data)], env=env, check=True)
    repo = Repo(repo_path, small_template.password_file, data, "")
    changed = data / "site1" / "public" / "file001.bin"
    changed.write_bytes(b"changed after the snapshot")
    result = cli("--config", restore_config(repo), "restore-test", "--format", "json")
    assert result.code == 0, result.stdout
    doc = _json(result)["results"][0]
    assert doc["data"]["changed_since_snapshot"] == [str(changed)]
    assert any("changed since the snapshot" in line for line in doc["details"])


def test_restore_test_live_file_same_stat_other_content_critical(
    cli: Cli, small_template: Repo, tmp_path: Path, restore_config: Callable[..., Path]
) -> None:
    data = tmp_path / "live"
    shutil.copytree(small_template.data_dir, data, symlinks=True)
    repo_path = tmp_path / "repo2"
    env = {"RESTIC_REPOSITORY": str(repo_path),
           "RESTIC_PASSWORD_FILE": str(small_template.password_file)}
    run(["restic", "--no-cache", "init"], env=env, check=True)
    run(["restic", "--no-cache", "backup", str(data)], env=env, check=True)
    repo = Repo(repo_path, small_template.password_file, data, "")
    target = data / "site2" / "data" / "file002.bin"
    before = target.stat()
    body = bytearray(target.read_bytes())
    body[0] ^= 0xFF
    target.write_bytes(bytes(body))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    result = cli("--config", restore_config(repo), "restore-test", "--format", "json")
    assert result.code == 2, result.stdout
    mismatches = _json(result)["results"][0]["data"]["mismatches"]
    assert mismatches == [
        {"path": str(target),
         "problem": "content differs from the live file of same size and mtime"}
    ]


def test_restore_test_slower_than_rto_target_warning(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path]
) -> None:
    config = restore_config(small_repo, restore_extra='rto_target = "1ms"')
    result = cli("--config", config, "restore-test", "--format", "json")
    assert result.code == 1, result.stdout
    assert "exceeds the RTO target" in _json(result)["summary"]


def test_restore_test_not_enough_scratch_space_unknown(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = restore_config(small_repo, reserve="1000000TiB")
    result = cli("--config", config, "restore-test", "--format", "json")
    assert result.code == 3
    assert "not enough scratch space" in _json(result)["summary"]
    assert scratch_leftovers(tmp_path) == []


def test_restore_test_stale_scratch_of_dead_process_swept(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path], tmp_path: Path
) -> None:
    stale = tmp_path / "scratch" / "durability-restore-old"
    (stale / "tree" / "x").mkdir(parents=True)
    (stale / "tree" / "x").chmod(0o500)
    (stale / "owner").write_text("999999999\n")
    result = cli("--config", restore_config(small_repo), "restore-test")
    assert result.code == 0
    assert scratch_leftovers(tmp_path) == []


def test_restore_test_read_data_subset_runs_check(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path]
) -> None:
    config = restore_config(small_repo, restore_extra='read_data_subset = "1/1"')
    result = cli("--config", config, "restore-test", "--format", "json")
    assert result.code == 0, result.stdout
    doc = _json(result)["results"][0]
    assert "check" in doc["data"]["seconds"]
    assert "read-data-subset 1/1 clean" in doc["details"]


def test_restore_test_unknown_source_name_exit_3(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path]
) -> None:
    result = cli("--config", restore_config(small_repo), "restore-test", "--source", "nope")
    assert result.code == 3
    assert "no source named 'nope'" in result.stderr


def test_check_with_restore_source_runs_restore_test(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path]
) -> None:
    config = restore_config(small_repo, restore_extra='source = "site"')
    result = cli("--config", config, "check", "--format", "json")
    doc = _json(result)
    restore = [r for r in doc["results"] if r["check"] == "restore-test"]
    assert restore and restore[0]["status"] == "OK"


@pytest.mark.parametrize("fmt", ["text", "nagios", "prometheus"])
def test_restore_test_formats_name_source_and_timing(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path], fmt: str
) -> None:
    result = cli("--config", restore_config(small_repo), "restore-test", "--format", fmt)
    assert result.code == 0
    if fmt == "prometheus":
        assert 'durability_check_status{check="restore-test",target="site"} 0' in result.stdout
        assert "durability_restore_throughput_bytes_per_second" in result.stdout
    else:
        assert "restored and verified" in result.stdout


def test_restore_test_unreachable_s3_repository_unknown(
    cli: Cli, write_config: Callable[[str], Path], tmp_path: Path
) -> None:
    # restic 0.17+ retries an unreachable backend for many minutes unless the restic
    # seam bounds it; until it does, this runs with the restic first on PATH only.
    from tests.support.seaweed import free_ports

    password = tmp_path / "password"
    password.write_text("unreachable\n")
    small_repo = Repo(tmp_path / "nowhere", password, tmp_path, "")
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-value\n")
    config = write_config(
        f'[restore]\nscratch_dir = "{tmp_path / "scratch"}"\n'
        "[[snapshots.sources]]\n"
        f'name = "far"\nkind = "restic"\n'
        f'repository = "s3:http://127.0.0.1:{free_ports(1)[0]}/bucket/repo"\n'
        f'password_file = "{small_repo.password_file}"\n'
        f'access_key_id = "key"\nsecret_access_key_file = "{secret}"\n'
    )
    result = cli("--config", config, "restore-test", "--format", "json")
    assert result.code == 3
    assert "connection refused" in _json(result)["summary"]
    assert "s3cr3t-value" not in result.stdout + result.stderr
    assert scratch_leftovers(tmp_path) == []

"""The repository's identity in restore tests, on real repositories of each restic version.

A repository swapped for another valid one (same password, host, paths and even the
same files) must not pass a restore test: its id differs from the one recorded for the
source, and nothing is restored until `durability snapshots ack SOURCE`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from durability.execute import run
from tests.conftest import CliResult
from tests.restore.conftest import Repo, scratch_leftovers

Cli = Callable[..., CliResult]


def _restore_test(cli: Cli, config: Path) -> tuple[int, dict]:
    done = cli("--config", config, "restore-test", "--format", "json")
    assert done.stdout, done.stderr
    doc = json.loads(done.stdout)
    return done.code, doc["results"][0]


def _repository_id(repo: Repo) -> str:
    return str(json.loads(repo.restic("cat", "config"))["id"])


def _swap(repo: Repo) -> None:
    """Replace the repository by a new one: same password, host, paths and files."""
    shutil.rmtree(repo.path)
    repo.restic("init")
    run(["restic", "--no-cache", "backup", str(repo.data_dir)], env=repo.env(), check=True,
        timeout=300)


def test_restore_test_replaced_repository_critical_until_acknowledged(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = restore_config(small_repo)
    original = _repository_id(small_repo)
    code, first = _restore_test(cli, config)
    assert code == 0, first
    assert first["data"]["repository_id"] == original
    # The first test records the id; there was nothing to compare it with yet.
    assert "repository identity" in first["data"]["not_verified"]
    assert "first seen" in first["data"]["not_verified_reasons"]["repository identity"]
    code, second = _restore_test(cli, config)
    assert code == 0, second
    assert "repository identity" in second["data"]["verified"]
    assert "repository identity" not in second["data"]["not_verified"]

    _swap(small_repo)
    replacement = _repository_id(small_repo)
    assert replacement != original
    code, swapped = _restore_test(cli, config)
    assert code == 2, swapped
    assert swapped["status"] == "CRITICAL"
    assert swapped["summary"].startswith("repository replaced"), swapped["summary"]
    assert original[:8] in swapped["summary"] and replacement[:8] in swapped["summary"]
    assert "durability snapshots ack site" in swapped["summary"]
    assert swapped["data"]["repository_id"] == replacement
    # Nothing was restored: no scratch folder, no restore phase.
    assert swapped["data"]["files_restored"] == 0
    assert swapped["data"]["cleanup"] == "none"
    assert "restore" not in swapped["data"]["seconds"]
    assert scratch_leftovers(tmp_path) == []
    # It stays CRITICAL, for the snapshots check as well (one record per source).
    assert _restore_test(cli, config)[0] == 2
    snapshots = cli("--config", config, "snapshots", "--format", "json")
    assert "repository replaced" in json.loads(snapshots.stdout)["summary"], snapshots.stdout

    acked = cli("--config", config, "snapshots", "ack", "site")
    assert acked.code == 0, acked.stderr
    assert f"replaces {original[:8]}" in acked.stdout
    code, after = _restore_test(cli, config)
    assert code == 0, after
    assert after["data"]["repository_id"] == replacement
    assert "repository identity" in after["data"]["verified"]


def test_restore_test_recorded_id_is_the_snapshots_one(
    cli: Cli, small_repo: Repo, restore_config: Callable[..., Path]
) -> None:
    config = restore_config(small_repo)
    # `durability snapshots` records the id first; the restore test compares with it.
    cli("--config", config, "snapshots", "--format", "json")
    code, result = _restore_test(cli, config)
    assert code == 0, result
    assert "repository identity" in result["data"]["verified"]
    _swap(small_repo)
    code, result = _restore_test(cli, config)
    assert code == 2, result
    assert "repository replaced" in result["summary"]


def test_restore_test_without_store_says_identity_not_verified(
    cli: Cli, small_repo: Repo, tmp_path: Path
) -> None:
    # The state store cannot be opened: its folder is a file.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    config = tmp_path / "durability.toml"
    config.write_text(
        f'[state]\npath = "{blocker / "state.db"}"\n'
        f'[restore]\nscratch_dir = "{tmp_path / "scratch"}"\nreserve = "1MiB"\n'
        f'[[snapshots.sources]]\nname = "site"\nkind = "restic"\n'
        f'repository = "{small_repo.path}"\npassword_file = "{small_repo.password_file}"\n',
        encoding="utf-8",
    )
    code, result = _restore_test(cli, config)
    assert code == 0, result
    assert result["data"]["repository_id"] == _repository_id(small_repo)
    assert "repository identity" in result["data"]["not_verified"]
    reason = result["data"]["not_verified_reasons"]["repository identity"]
    assert "could not be read" in reason, reason
    assert "repository identity" in result["summary"]

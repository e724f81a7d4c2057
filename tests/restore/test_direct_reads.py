"""A local repository read directly (one `restic cat masterkey`), checked against restic.

Each fact the restore test reads itself (repository id, snapshots, index, trees) is
compared with what the restic under test prints for the same repository, on a v2
(compressed) and a v1 repository; damage is built by flipping real bytes. The
speculative restore begun beside the checks is shown to leave nothing behind when a
check stops the test, and to keep the scratch disk's reserve.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from durability.config import parse_config
from durability.execute import run
from durability.model import Result, Status
from durability.restic import Restic, parse_snapshots
from durability.resticlocal import Damaged, LocalRepository, parse_masterkey
from durability.restore.command import find_source
from durability.restore.outcome import evaluate_restore
from durability.restore.runner import Options, run_restic
from tests.conftest import CliResult, ResticBinary
from tests.restore.conftest import Repo, mounted_tmpfs, scratch_leftovers

Cli = Callable[..., CliResult]


def _reader(repo: Repo) -> LocalRepository:
    restic = Restic(str(repo.path), str(repo.password_file), no_cache=True)
    reader = restic.local_reader(str(repo.path))
    reader.load_index()
    return reader


def _tree_ids(reader: LocalRepository, root: str) -> list[str]:
    found, level = [], [root]
    while level:
        found += level
        level = [
            node["subtree"] for tree in level
            for node in json.loads(reader.tree(tree))["nodes"] if node["type"] == "dir"
        ]
    return found


def _v1_repo(tmp_path: Path, small_repo: Repo) -> Repo:
    repo = Repo(tmp_path / "v1", small_repo.password_file, small_repo.data_dir, "")
    run(["restic", "--no-cache", "init", "--repository-version", "1"], env=repo.env(),
        check=True, timeout=120)
    run(["restic", "--no-cache", "backup", str(small_repo.data_dir)], env=repo.env(),
        check=True, timeout=300)
    return repo


@pytest.mark.parametrize("version", ["2", "1"])
def test_direct_reads_agree_with_restic(
    small_repo: Repo, tmp_path: Path, version: str
) -> None:
    repo = small_repo if version == "2" else _v1_repo(tmp_path, small_repo)
    reader = _reader(repo)
    config = json.loads(repo.restic("cat", "config"))
    assert reader.config()["version"] == config["version"] == int(version)
    assert reader.repository_id() == config["id"]
    loaded, damaged = reader.snapshots()
    assert damaged == []
    theirs = parse_snapshots(repo.restic("snapshots", "--json"))
    ours = parse_snapshots(json.dumps(loaded))
    assert sorted((s.id, s.time, s.tree) for s in ours) == sorted(
        (s.id, s.time, s.tree) for s in theirs
    )
    root = ours[-1].tree
    assert root is not None
    trees = _tree_ids(reader, root)
    assert len(trees) > 1
    for tree_id in trees:
        assert reader.tree(tree_id) == repo.restic("cat", "blob", tree_id)
    packs = set().union(*reader.load_index())
    assert packs == set(repo.restic("list", "packs").split())


def test_direct_read_of_flipped_tree_byte_is_damage(small_repo: Repo) -> None:
    reader = _reader(small_repo)
    root = parse_snapshots(json.dumps(reader.snapshots()[0]))[-1].tree
    assert root is not None
    small_repo.corrupt(small_repo.packs("tree")[0], offset=10)
    with pytest.raises(Damaged, match="authentication code does not match"):
        for tree_id in _tree_ids(reader, root):
            reader.tree(tree_id)


def test_direct_read_of_damaged_snapshot_file_lists_it_damaged(small_repo: Repo) -> None:
    snapshot = next((small_repo.path / "snapshots").iterdir())
    data = bytearray(snapshot.read_bytes())
    data[40] ^= 0x01
    snapshot.write_bytes(bytes(data))
    loaded, damaged = _reader(small_repo).snapshots()
    assert damaged == [snapshot.name]
    assert snapshot.name not in {item["id"] for item in loaded}


def test_masterkey_output_that_is_not_a_key_is_refused_without_quoting_it() -> None:
    from durability.resticlocal import Unsupported

    with pytest.raises(Unsupported) as error:
        parse_masterkey('{"encrypt": "c2VjcmV0LXNlY3JldA==", "mac": {}}')
    assert "c2VjcmV0" not in str(error.value)


def _config(repo: Repo, tmp_path: Path, reserve: str = "1MiB", scratch: Path | None = None,
            ) -> Path:
    config = tmp_path / "durability.toml"
    config.write_text(
        f'[state]\npath = "{tmp_path / "state.db"}"\n'
        f'[restore]\nscratch_dir = "{scratch or tmp_path / "scratch"}"\nreserve = "{reserve}"\n'
        f'[[snapshots.sources]]\nname = "site"\nkind = "restic"\n'
        f'repository = "{repo.path}"\npassword_file = "{repo.password_file}"\n'
    )
    return config


def test_restore_test_never_shows_the_master_key(
    cli: Cli, small_repo: Repo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = json.loads(small_repo.restic("cat", "masterkey"))
    secrets = [key["encrypt"], key["mac"]["k"], key["mac"]["r"]]
    with caplog.at_level(logging.DEBUG):
        result = cli("-v", "--config", _config(small_repo, tmp_path), "restore-test",
                     "--format", "json")
    assert result.code == 0, result.stdout + result.stderr
    shown = result.stdout + result.stderr + caplog.text
    assert "cat masterkey" in caplog.text  # the key was read, by restic, once
    assert not [secret for secret in secrets if secret in shown]
    store = (tmp_path / "state.db").read_bytes()
    assert not [secret for secret in secrets if secret.encode() in store]


def test_restore_test_reads_every_tree_of_a_local_repository(
    small_repo: Repo, tmp_path: Path
) -> None:
    config = parse_config(_config(small_repo, tmp_path).read_text())
    outcome = run_restic(find_source(config, "site"), config.restore,
                         Options(tree_budget=1), datetime.now(UTC))
    result = evaluate_restore(outcome, None)
    assert result.status is Status.OK, result.summary
    assert {"symlink target", "hard links"} <= set(result.data["verified"])
    assert not {"symlink target", "hard links"} & set(result.data["not_verified"])


def test_restore_test_reads_the_same_through_restic(small_repo: Repo, tmp_path: Path) -> None:
    """The path every remote repository takes gives the same verdict on the same data."""
    config = parse_config(_config(small_repo, tmp_path).read_text())
    direct = run_restic(find_source(config, "site"), config.restore, Options(),
                        datetime.now(UTC))
    through = run_restic(find_source(config, "site"), config.restore,
                         Options(read_directly=False), datetime.now(UTC))
    assert (direct.snapshot_id, direct.files_expected, direct.full_size_bytes) == (
        through.snapshot_id, through.files_expected, through.full_size_bytes
    )
    assert direct.failure is None and through.failure is None


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs for one test."""
    with mounted_tmpfs(tmp_path / "small", "size=48m") as mount:
        yield mount


@pytest.mark.root
def test_restore_begun_early_keeps_the_reserve_and_leaves_nothing(
    cli: Cli, large_template: Repo, tmp_path: Path, small_tmpfs: Path
) -> None:
    """The restore begun beside the checks is stopped when the whole would not fit."""
    shutil.copytree(large_template.path, tmp_path / "repo")
    repo = Repo(tmp_path / "repo", large_template.password_file, large_template.data_dir, "")
    scratch = small_tmpfs / "scratch"
    config = _config(repo, tmp_path, reserve="40MiB", scratch=scratch)
    result = cli("--config", config, "restore-test", "--format", "json")
    assert result.stdout, result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert result.code == 3, summary
    # Stopped by the free-space check, at the reserve, or (restic having filled the
    # disk before it was stopped) when the list of entries could not be written.
    assert any(
        reason in summary for reason in ("not enough scratch space", "reserve", "scratch disk full")
    ), summary
    assert os.listdir(scratch) == []
    # The restic stopped at the reserve left its lock; it was removed.
    assert list((repo.path / "locks").iterdir()) == []
    assert os.statvfs(small_tmpfs).f_bfree * os.statvfs(small_tmpfs).f_frsize > 47 << 20


def test_restore_begun_early_is_dropped_when_the_newest_snapshot_is_damaged(
    cli: Cli, small_repo: Repo, tmp_path: Path
) -> None:
    run(["restic", "--no-cache", "backup", str(small_repo.data_dir)], env=small_repo.env(),
        check=True, timeout=300)
    newest = max((small_repo.path / "snapshots").iterdir(), key=lambda p: p.stat().st_mtime)
    newest.write_bytes(newest.read_bytes()[:-5])
    result = cli("--config", _config(small_repo, tmp_path), "restore-test", "--format", "json")
    summary = json.loads(result.stdout)["summary"]
    assert result.code == 2, summary
    assert "cannot be loaded" in summary
    assert scratch_leftovers(tmp_path) == []


def _forge_summary(repo: Repo, files: int) -> None:
    """Replace the newest snapshot file by one whose backup summary counts `files` files.

    Written as restic writes it (version 2: zstd inside AES-256-CTR, Poly1305-AES code,
    named by its SHA-256) with the repository's own master key, so it loads in restic.
    """
    import hashlib

    import zstandard
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.poly1305 import Poly1305

    key = parse_masterkey(repo.restic("cat", "masterkey"))
    (name,) = [p.name for p in (repo.path / "snapshots").iterdir()]
    snapshot = json.loads(repo.restic("cat", "snapshot", name))
    snapshot["summary"]["total_files_processed"] = files
    plain = b"\x02" + zstandard.ZstdCompressor().compress(json.dumps(snapshot).encode())
    nonce = os.urandom(16)
    encryptor = Cipher(algorithms.AES(key.encrypt), modes.CTR(nonce)).encryptor()
    body = encryptor.update(plain) + encryptor.finalize()
    ecb = Cipher(algorithms.AES(key.mac_k), modes.ECB()).encryptor()
    mac = Poly1305(key.mac_r + ecb.update(nonce) + ecb.finalize())
    mac.update(body)
    data = nonce + body + mac.finalize()
    (repo.path / "snapshots" / name).unlink()
    (repo.path / "snapshots" / hashlib.sha256(data).hexdigest()).write_bytes(data)


@pytest.mark.parametrize("read_directly", [True, False])
def test_restore_test_snapshot_summary_compared(
    small_repo: Repo, tmp_path: Path, restic_binary: ResticBinary, read_directly: bool
) -> None:
    config = parse_config(_config(small_repo, tmp_path).read_text())

    def test() -> Result:
        outcome = run_restic(find_source(config, "site"), config.restore,
                             Options(read_directly=read_directly), datetime.now(UTC))
        return evaluate_restore(outcome, None)

    clean = test()
    assert clean.status is Status.OK, clean.summary
    if restic_binary.version == "0.14":  # restic 0.14 writes no summary
        assert "backup summary" not in clean.data["verified"]
        return
    assert "backup summary" in clean.data["verified"]
    _forge_summary(small_repo, files=clean.data["files_verified"] + 1)
    forged = test()
    assert forged.status is Status.WARNING, forged.summary
    assert "its backup summary says" in forged.summary
    assert "backup summary" not in forged.data["verified"]

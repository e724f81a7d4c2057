"""Restored metadata compared with the snapshot's own tree, names as bytes, empty and
damaged snapshots: each fault built for real on a repository of the restic under test.

Metadata faults are made by damaging what came back between the restore and the
comparison (the runner's `before_verify` seam), so the real comparison code judges a
real restored tree.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from durability.config import parse_config
from durability.execute import run
from durability.model import Result, Status
from durability.restore.command import find_source
from durability.restore.outcome import evaluate_restore
from durability.restore.runner import Options, run_restic
from durability.state.store import Store, open_sqlite
from tests.conftest import CliResult, ResticBinary
from tests.restore.conftest import Repo, scratch_leftovers

Cli = Callable[..., CliResult]

RAW_DIR = b"d\xff\xfeir"
RAW_FILE = b"caf\xe9.txt"


def _populate(data: Path) -> None:
    (data / "bin").mkdir(parents=True)
    tool = data / "bin" / "tool"
    tool.write_bytes(b"#!/bin/sh\necho tool\n")
    tool.chmod(0o4755)
    (data / "plain.txt").write_bytes(b"plain text\n" * 100)
    os.utime(data / "plain.txt", ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    os.symlink("plain.txt", data / "link")
    (data / "shared").mkdir()
    (data / "shared" / "one").write_bytes(b"the same inode\n")
    os.link(data / "shared" / "one", data / "shared" / "two")
    (data / "tagged").write_bytes(b"with an attribute\n")
    os.setxattr(data / "tagged", "user.origin", b"backup")
    raw = os.path.join(os.fsencode(data), RAW_DIR)
    os.mkdir(raw)
    with open(os.path.join(raw, RAW_FILE), "wb") as handle:
        handle.write(b"latin-1 name\n")
    (data / "new\nline").write_bytes(b"a newline in the name\n")


def _backup(repo: Repo, *paths: Path, when: str | None = None) -> str:
    args = ["restic", "--no-cache", "backup", "--json", *(str(p) for p in paths)]
    if when:
        args += ["--time", when]
    done = run(args, env=repo.env(), check=True, timeout=300)
    return next(
        json.loads(line)["snapshot_id"] for line in done.stdout.splitlines()
        if '"summary"' in line
    )


@pytest.fixture
def meta_repo(restic_bin: str, tmp_path: Path) -> Repo:
    """A repository of one snapshot holding setuid, symlink, hard links, xattrs, raw names."""
    data = tmp_path / "live"
    _populate(data)
    password = tmp_path / "password"
    password.write_text("metadata-test-password\n")
    password.chmod(0o600)
    repo = Repo(tmp_path / "repo", password, data, "")
    run(["restic", "--no-cache", "init"], env=repo.env(), check=True, timeout=120)
    return Repo(repo.path, password, data, _backup(repo, data))


def _test(
    repo: Repo, tmp_path: Path, tamper: Callable[[Path], None] | None = None,
    store: Store | None = None, **options: Any,
) -> Result:
    config = parse_config(
        f'[restore]\nscratch_dir = "{tmp_path / "scratch"}"\nreserve = "1MiB"\n'
        f'[[snapshots.sources]]\nname = "site"\nkind = "restic"\n'
        f'repository = "{repo.path}"\npassword_file = "{repo.password_file}"\n'
    )

    def hook(tree: str) -> None:
        assert tamper is not None
        tamper(Path(tree + str(repo.data_dir)))

    outcome = run_restic(
        find_source(config, "site"), config.restore,
        Options(before_verify=hook if tamper else None, **options), datetime.now(UTC),
        open_store=(lambda: store) if store is not None else None,
    )
    return evaluate_restore(outcome, None)


def _retarget(link: Path) -> None:
    """Point a symlink elsewhere, keeping its and its folder's mtime (only the target differs)."""
    info, folder = link.lstat(), link.parent.stat()
    link.unlink()
    os.symlink("/etc/passwd", link)
    os.utime(link, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)
    os.utime(link.parent, ns=(folder.st_atime_ns, folder.st_mtime_ns))


def _problems(result: Result) -> dict[str, str]:
    return {m["path"]: m["problem"] for m in result.data["mismatches"]}


def test_restore_metadata_clean_ok_lists_verified(
    meta_repo: Repo, tmp_path: Path, restic_binary: ResticBinary
) -> None:
    store = open_sqlite(str(tmp_path / "state.db"))
    # The first test of a repository records its id: not yet compared with anything.
    first = _test(meta_repo, tmp_path, store=store)
    assert first.status is Status.OK, first.summary
    assert first.data["not_verified"] == ["repository identity"]
    assert "first seen" in first.data["not_verified_reasons"]["repository identity"]
    assert "not verified: repository identity" in first.summary
    result = _test(meta_repo, tmp_path, store=store)
    store.close()
    assert result.status is Status.OK, result.summary
    assert result.data["verified"] == [
        "content", "size", "type", "names", "mode", "mtime", "symlink target", "hard links",
        "owner", "xattrs", "repository identity",
        # restic 0.17 and newer write a backup summary into the snapshot.
        *(["backup summary"] if restic_binary.version != "0.14" else []),
    ]
    assert result.data["not_verified"] == []
    assert result.data["repository_id"] == first.data["repository_id"]
    assert len(result.data["repository_id"]) == 64
    assert result.data["mismatches"] == []
    assert scratch_leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("fault", "path", "problem"),
    [
        ("setuid dropped", "bin/tool", "mode 0600, expected 4755"),
        ("mtime changed", "plain.txt",
         "mtime 2023-11-14T22:13:21.000000000Z, expected 2023-11-14T22:13:20.123456789Z"),
        ("symlink retargeted", "link", "symlink to /etc/passwd, expected plain.txt"),
        ("hard link broken", "shared/two", "not a hard link of"),
        ("owner changed", "plain.txt", "owner 4321:4321, expected 0:0"),
        ("xattr changed", "tagged", "extended attribute user.origin differs"),
        ("xattr removed", "tagged", "extended attribute user.origin missing"),
    ],
)
def test_restore_metadata_fault_critical(
    meta_repo: Repo, tmp_path: Path, fault: str, path: str, problem: str
) -> None:
    if fault == "owner changed" and os.geteuid() != 0:
        pytest.skip("owners are compared only when run as root")

    def tamper(live: Path) -> None:
        target = live / path
        if fault == "setuid dropped":
            target.chmod(0o600)
        elif fault == "mtime changed":
            os.utime(target, ns=(1_700_000_001_000_000_000, 1_700_000_001_000_000_000))
        elif fault == "symlink retargeted":
            _retarget(target)
        elif fault == "hard link broken":
            info = target.stat()
            copy = target.with_name("copy")
            shutil.copy2(target, copy)
            os.replace(copy, target)
            os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
        elif fault == "owner changed":
            os.chown(target, 4321, 4321)
        elif fault == "xattr changed":
            os.setxattr(target, "user.origin", b"forged")
        elif fault == "xattr removed":
            os.removexattr(target, "user.origin")

    result = _test(meta_repo, tmp_path, tamper)
    assert result.status is Status.CRITICAL, result.summary
    problems = _problems(result)
    full = str(meta_repo.data_dir / path)
    assert full in problems, problems
    assert problems[full].startswith(problem)
    assert scratch_leftovers(tmp_path) == []


def test_restore_metadata_over_tree_budget_says_what_was_not_verified(
    meta_repo: Repo, tmp_path: Path
) -> None:
    result = _test(meta_repo, tmp_path, lambda live: _retarget(live / "link"), tree_budget=1,
                   read_directly=False)
    # Without the trees a symlink target cannot be compared: not OK by silence.
    assert result.status is Status.OK
    assert {"symlink target", "hard links", "xattrs"} <= set(result.data["not_verified"])
    assert "symlink target" not in result.data["verified"]
    assert "not verified: " in result.summary and "symlink target" in result.summary
    assert "more than the 1 whose trees are read" in (
        result.data["not_verified_reasons"]["symlink target"]
    )


def test_restore_raw_name_restored_ok_and_compared_as_bytes(
    meta_repo: Repo, tmp_path: Path
) -> None:
    result = _test(meta_repo, tmp_path)
    assert result.status is Status.OK, result.summary
    assert "names" in result.data["verified"]

    def rename(live: Path) -> None:
        folder = os.path.join(os.fsencode(live), RAW_DIR)
        os.rename(os.path.join(folder, RAW_FILE), os.path.join(folder, b"caf\xe8.txt"))

    damaged = _test(meta_repo, tmp_path, rename)
    assert damaged.status is Status.CRITICAL
    by_bytes = {
        base64.b64decode(m["path_b64"]): m["problem"] for m in damaged.data["mismatches"]
        if "path_b64" in m
    }
    folder = os.fsencode(meta_repo.data_dir) + b"/" + RAW_DIR
    assert by_bytes[folder + b"/" + RAW_FILE] == "missing (file expected)"
    assert by_bytes[folder + b"/caf\xe8.txt"] == "not in the snapshot (file)"
    shown = {m["path"] for m in damaged.data["mismatches"]}
    assert str(meta_repo.data_dir) + "/d\\xff\\xfeir/caf\\xe9.txt" in shown


def test_restore_raw_name_over_budget_no_false_critical(meta_repo: Repo, tmp_path: Path) -> None:
    result = _test(meta_repo, tmp_path, tree_budget=1, read_directly=False)
    assert result.status is Status.OK, result.summary
    assert "names" in result.data["not_verified"]


@pytest.mark.parametrize("budget", [64, 1])
def test_restore_raw_name_sample_restores_exact_bytes(
    meta_repo: Repo, tmp_path: Path, budget: int
) -> None:
    # With the trees the sample names exact bytes; without, `?` stands for each byte
    # restic listed as U+FFFD. Every file is in a sample of all of them.
    files = 7
    for seed in range(2):
        result = _test(meta_repo, tmp_path, sample=files, seed=seed, tree_budget=budget,
                       read_directly=budget > 1)
        assert result.status is Status.OK, result.summary
        assert result.data["files_verified"] == files


def test_restore_raw_name_with_history_json_valid(
    cli: Cli, meta_repo: Repo, restore_config: Callable[..., Path]
) -> None:
    config = restore_config(meta_repo)
    result = cli("--config", config, "restore-test", "--format", "json")
    assert result.code == 0, result.stdout + result.stderr
    history = cli("--config", config, "history", "--check", "restore-test", "--format", "json")
    assert history.code == 0, history.stderr
    assert json.loads(history.stdout)["history"][0]["status"] == "OK"


def test_restore_empty_snapshot_warning(restic_bin: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    password = tmp_path / "password"
    password.write_text("empty-snapshot-password\n")
    repo = Repo(tmp_path / "repo", password, empty, "")
    run(["restic", "--no-cache", "init"], env=repo.env(), check=True, timeout=120)
    _backup(repo, empty)
    result = _test(repo, tmp_path)
    assert result.status is Status.WARNING
    assert "holds no files" in result.summary
    assert "0 files, 0 B" not in result.summary


def _newest_snapshot_file(repo: Repo, snapshot_id: str) -> Path:
    # restic 0.14 reports a short snapshot id.
    [path] = [p for p in (repo.path / "snapshots").iterdir() if p.name.startswith(snapshot_id)]
    return path


@pytest.mark.parametrize("damage", ["flipped byte", "truncated"])
def test_restore_damaged_newest_snapshot_critical_never_older(
    meta_repo: Repo, tmp_path: Path, damage: str
) -> None:
    newest = _backup(meta_repo, meta_repo.data_dir)
    snapshot = _newest_snapshot_file(meta_repo, newest)
    snapshot.chmod(0o600)
    body = bytearray(snapshot.read_bytes())
    if damage == "flipped byte":
        body[len(body) // 2] ^= 0x01
    else:
        body = body[: len(body) // 2]
    snapshot.write_bytes(bytes(body))
    result = _test(meta_repo, tmp_path)
    assert result.status is Status.CRITICAL, result.summary
    assert newest[:8] in result.summary
    assert "cannot be loaded" in result.summary
    assert "restore" not in result.data["seconds"]
    # Asked for by ID, the damaged snapshot is CRITICAL; the older one is still testable.
    by_id = _test(meta_repo, tmp_path, snapshot=newest[:8])
    assert by_id.status is Status.CRITICAL
    older = _test(meta_repo, tmp_path, snapshot=meta_repo.snapshot_id[:8])
    assert older.status is Status.OK, older.summary
    assert any("cannot be loaded" in line for line in older.details)

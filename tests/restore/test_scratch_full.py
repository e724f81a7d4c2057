"""Scratch space running out: before the restore (checked) and during it (real tmpfs)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from durability.restore import scratch
from tests.conftest import CliResult
from tests.restore.conftest import Repo, mounted_tmpfs

Cli = Callable[..., CliResult]


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs with plenty of bytes but only a few inodes, mounted for one test."""
    with mounted_tmpfs(tmp_path / "tiny", "size=64m,nr_inodes=12") as mount:
        yield mount


@pytest.mark.root
def test_restore_test_scratch_fills_during_restore_unknown_and_cleaned(
    cli: Cli, small_repo: Repo, write_config: Callable[[str], Path], tiny_tmpfs: Path
) -> None:
    config = write_config(
        f'[restore]\nscratch_dir = "{tiny_tmpfs / "scratch"}"\nreserve = "1MiB"\n'
        "[[snapshots.sources]]\n"
        f'name = "site"\nkind = "restic"\nrepository = "{small_repo.path}"\n'
        f'password_file = "{small_repo.password_file}"\n'
    )
    result = cli("--config", config, "restore-test", "--format", "json")
    summary = json.loads(result.stdout)["summary"]
    assert result.code == 3, summary
    assert "scratch disk full" in summary
    assert "no space left on device" in summary
    assert os.listdir(tiny_tmpfs / "scratch") == []


def test_check_space_too_little_names_need_and_free(tmp_path: Path) -> None:
    free = scratch.free_bytes(str(tmp_path))
    with pytest.raises(scratch.ScratchError, match="not enough scratch space") as error:
        scratch.check_space(str(tmp_path), free, 1024 * 1024)
    assert "free" in str(error.value)
    scratch.check_space(str(tmp_path), 1, 0)


def test_create_fresh_private_folder_and_remove_read_only_tree(tmp_path: Path) -> None:
    first, second = scratch.create(str(tmp_path)), scratch.create(str(tmp_path))
    assert first.root != second.root
    assert os.stat(first.root).st_mode & 0o777 == 0o700
    locked = Path(first.tree) / "a" / "b"
    locked.mkdir(parents=True)
    (locked / "f").write_text("x")
    (locked / "f").chmod(0o400)
    locked.chmod(0o500)
    (Path(first.tree) / "a").chmod(0o500)
    scratch.remove_tree(first.root)
    assert not os.path.exists(first.root)


def test_sweep_stale_keeps_live_and_kept_folders(tmp_path: Path) -> None:
    live = scratch.create(str(tmp_path))
    kept = scratch.create(str(tmp_path))
    scratch.keep(kept)
    dead = Path(scratch.create(str(tmp_path)).root)
    (dead / "owner").write_text("999999999\n")
    assert scratch.sweep_stale(str(tmp_path)) == [str(dead)]
    assert os.path.exists(live.root) and os.path.exists(kept.root)


def test_ensure_parent_unwritable_scratch_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(scratch.ScratchError, match="scratch folder"):
        scratch.ensure_parent(str(blocker / "sub"))


def test_shielded_signal_during_removal_waits_then_raises(tmp_path: Path) -> None:
    import signal

    folder = scratch.create(str(tmp_path))
    with pytest.raises(scratch.Terminated), scratch.terminate_as_exception():
        with scratch.shielded():
            os.kill(os.getpid(), signal.SIGTERM)
            scratch.remove_tree(folder.root)
        pytest.fail("the held-back signal was not raised")  # pragma: no cover
    assert not os.path.exists(folder.root)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

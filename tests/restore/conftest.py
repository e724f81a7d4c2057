"""Fixtures of the restore tests: real local restic repositories, copied per test."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from durability.execute import run
from durability.restore.demo import build_demo_repository, write_example_data
from tests.conftest import ResticBinary


@dataclass(frozen=True)
class Repo:
    """A restic repository private to one test, and the live data it was made from."""

    path: Path
    password_file: Path
    data_dir: Path
    snapshot_id: str

    def env(self) -> dict[str, str]:
        """Return restic's environment for this repository."""
        return {
            "RESTIC_REPOSITORY": str(self.path),
            "RESTIC_PASSWORD_FILE": str(self.password_file),
            "RESTIC_PASSWORD": "",
        }

    def restic(self, *args: str) -> str:
        """Run restic on this repository (no cache) and return stdout; fail on error."""
        return run(["restic", "--no-cache", *args], env=self.env(), check=True).stdout

    def packs(self, blob_type: str) -> list[Path]:
        """Return the pack files holding blobs of one type ("data" or "tree")."""
        found = []
        for index_id in self.restic("list", "index").split():
            index = json.loads(self.restic("cat", "index", index_id))
            for pack in index["packs"]:
                if any(blob["type"] == blob_type for blob in pack["blobs"]):
                    found.append(self.path / "data" / pack["id"][:2] / pack["id"])
        return found

    def corrupt(self, pack: Path, offset: int = 64) -> None:
        """Flip one byte of a pack file."""
        pack.chmod(0o600)
        body = bytearray(pack.read_bytes())
        body[min(offset, len(body) - 1)] ^= 0xFF
        pack.write_bytes(bytes(body))


@pytest.fixture
def restic_bin(restic_binary: ResticBinary) -> str:
    """Return the restic program under test (each version in turn, first on PATH)."""
    return str(restic_binary)


def _copy(template: Repo, folder: Path) -> Repo:
    path = folder / "repo"
    shutil.copytree(template.path, path)
    return Repo(path, template.password_file, template.data_dir, template.snapshot_id)


@pytest.fixture(scope="session")
def small_template(
    tmp_path_factory: pytest.TempPathFactory, restic_binary: ResticBinary
) -> Repo:
    """A repository of ~1.5 MiB of example data, built once per session and restic version."""
    root = tmp_path_factory.mktemp(f"restic-small-{restic_binary.version}")
    demo = build_demo_repository(
        str(root / "repo"), str(root / "password"), restic=str(restic_binary)
    )
    return Repo(Path(demo.repository), Path(demo.password_file), Path(demo.data_dir),
                demo.snapshot_id)


@pytest.fixture
def small_repo(small_template: Repo, tmp_path: Path) -> Repo:
    """A private copy of the small repository (free to corrupt)."""
    return _copy(small_template, tmp_path)


@pytest.fixture(scope="session")
def large_template(
    tmp_path_factory: pytest.TempPathFactory, restic_binary: ResticBinary
) -> Repo:
    """A repository of ~96 MiB of random data, for restores that take a while."""
    root = tmp_path_factory.mktemp(f"restic-large-{restic_binary.version}")
    data = root / "data"
    data.mkdir()
    for number in range(12):
        (data / f"blob{number:02d}.bin").write_bytes(os.urandom(8 * 1024 * 1024))
    demo = build_demo_repository(
        str(root / "repo"), str(root / "password"), str(data), restic=str(restic_binary)
    )
    return Repo(Path(demo.repository), Path(demo.password_file), data, demo.snapshot_id)


@pytest.fixture
def restore_config(
    write_config: Callable[[str], Path], tmp_path: Path
) -> Callable[..., Path]:
    """Return a function writing a config with one restic source and private scratch."""

    def write(
        repo: Repo, extra: str = "", restore_extra: str = "", reserve: str = "1MiB"
    ) -> Path:
        scratch = tmp_path / "scratch"
        return write_config(
            f'[restore]\nscratch_dir = "{scratch}"\nreserve = "{reserve}"\n{restore_extra}\n'
            f"[[snapshots.sources]]\n"
            f'name = "site"\nkind = "restic"\nrepository = "{repo.path}"\n'
            f'password_file = "{repo.password_file}"\n{extra}'
        )

    return write


def scratch_leftovers(tmp_path: Path) -> list[str]:
    """Return what is left in the test's scratch folder."""
    scratch = tmp_path / "scratch"
    return sorted(os.listdir(scratch)) if scratch.exists() else []


__all__ = ["Repo", "scratch_leftovers", "write_example_data"]


@contextlib.contextmanager
def mounted_tmpfs(mount: Path, options: str) -> Iterator[Path]:
    """Mount a private tmpfs at `mount` (made here) with `options`; skip without root."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"{options},mode=0700", "tmpfs", str(mount)],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)

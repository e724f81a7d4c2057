"""Fixtures of the helper tests: real loop-mounted filesystems and an in-process CLI."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from durability.helper import i18n
from durability.helper.cli import main
from tests.conftest import CliResult, ResticBinary


def _sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


@dataclass
class LoopDisk:
    """A filesystem image attached to a loop device and mounted in a temp folder."""

    image: Path
    device: str
    mountpoint: Path
    fstype: str
    mounted: bool = True
    extra: list[str] = field(default_factory=list)

    def unmount(self, lazy: bool = False) -> None:
        """Unmount it (lazily: detached now, released when nothing uses it)."""
        _sh("umount", *(["-l"] if lazy else []), str(self.mountpoint))
        self.mounted = False

    def mount(self, *options: str) -> None:
        """Mount it again, with mount options such as "ro"."""
        argv = ["mount"]
        if options:
            argv += ["-o", ",".join(options)]
        _sh(*argv, self.device, str(self.mountpoint))
        self.mounted = True

    def uuid(self) -> str:
        """Return the filesystem UUID as blkid reads it."""
        return _sh("blkid", "-p", "-s", "UUID", "-o", "value", self.device).stdout.strip()


def tree_state(root: Path) -> dict[str, tuple[int, int, int]]:
    """Return (size, mtime_ns, ctime_ns) of everything under root, root included."""
    state = {}
    for path in [root, *sorted(root.rglob("*"))]:
        stat = path.lstat()
        state[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    return state


@pytest.fixture
def loop_disk(
    tmp_path: Path, restic_binary: ResticBinary
) -> Iterator[Callable[..., LoopDisk]]:
    """Return a factory of mounted loop disks; every one is unmounted and detached after.

    Tests on loop disks copy with a real restic: they run once per restic version.

    Skips with the reason when this machine cannot do loop mounts (not root, no loop
    devices, or a kernel without the filesystem).
    """
    if os.geteuid() != 0:
        pytest.skip("loop mounts need root")
    if shutil.which("losetup") is None:
        pytest.skip("losetup is not installed")
    made: list[LoopDisk] = []

    def make(fstype: str = "ext4", size_mb: int = 64, label: str = "BACKUP") -> LoopDisk:
        index = len(made)
        image = tmp_path / f"disk{index}.img"
        with open(image, "wb") as stream:
            stream.truncate(size_mb * 1024 * 1024)
        if fstype == "ext4":
            # No blocks reserved for root: a "full" disk is full for root too.
            _sh("mkfs.ext4", "-q", "-F", "-m", "0", "-L", label, str(image))
        elif fstype == "vfat":
            if shutil.which("mkfs.vfat") is None:
                pytest.skip("mkfs.vfat (dosfstools) is not installed")
            _sh("mkfs.vfat", "-n", label[:11], str(image))
        else:
            raise ValueError(fstype)
        attached = _sh("losetup", "--find", "--show", str(image), check=False)
        if attached.returncode != 0:
            pytest.skip(f"no loop device available: {attached.stderr.strip()}")
        device = attached.stdout.strip()
        mountpoint = tmp_path / f"mnt{index}"
        mountpoint.mkdir()
        mounted = _sh("mount", device, str(mountpoint), check=False)
        if mounted.returncode != 0:
            _sh("losetup", "-d", device, check=False)
            pytest.skip(f"cannot mount {fstype} here: {mounted.stderr.strip().splitlines()[0]}")
        disk = LoopDisk(image, device, mountpoint, fstype)
        made.append(disk)
        return disk

    yield make
    for disk in made:
        mounted = disk.mounted or os.path.ismount(disk.mountpoint)
        if mounted and _sh("umount", str(disk.mountpoint), check=False).returncode != 0:
            _sh("umount", "-l", str(disk.mountpoint), check=False)
        _sh("losetup", "-d", disk.device, check=False)


@dataclass
class Helper:
    """Runs durability-helper in-process with a private config and cache folder."""

    config: Path
    cache: Path

    def __call__(self, *argv: object) -> CliResult:
        """Run `durability-helper ARGV` and return its exit code and output."""
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main([str(a) for a in argv])
            except SystemExit as done:
                code = int(done.code or 0)
            else:  # pragma: no cover - main always exits
                code = -1
        return CliResult(code, out.getvalue(), err.getvalue())

    @property
    def folder(self) -> Path:
        """Return the helper's folder."""
        return self.config / "durability-helper"

    def receipts(self) -> list[Path]:
        """Return the receipt files kept so far."""
        return sorted((self.folder / "receipts").glob("*.json"))

    def key_file(self) -> Path:
        """Return the only password file (one disk enrolled)."""
        keys = list((self.folder / "keys").iterdir())
        assert len(keys) == 1, keys
        return keys[0]


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Helper:
    """Return a runner of durability-helper whose folders are private to this test."""
    config = tmp_path / "config"
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    for name in ("RESTIC_PASSWORD", "RESTIC_PASSWORD_FILE", "RESTIC_REPOSITORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    # English messages unless a test asks for Polish (LANG=pl_PL.UTF-8).
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    return Helper(config, cache)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """Return a folder of customer files to copy (a few files, one in a subfolder)."""
    root = tmp_path / "documents"
    (root / "photos").mkdir(parents=True)
    (root / "letter.txt").write_text("Dear provider,\n", encoding="utf-8")
    (root / "photos" / "cat [1].jpg").write_bytes(os.urandom(300_000))
    (root / "notes*.md").write_text("# odd name\n", encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def english_messages() -> Iterator[None]:
    """Library calls speak English in tests, whatever the locale of the machine."""
    from durability.helper import i18n

    i18n.use("en")
    yield
    i18n.use("en")


@pytest.fixture
def polish() -> Iterator[None]:
    """Within the test, the helper speaks Polish."""
    i18n.use("pl")
    try:
        yield
    finally:
        i18n.use("en")

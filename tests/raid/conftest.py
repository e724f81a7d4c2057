"""Fixtures for the RAID tests: captured kernel states as fake /proc and /sys trees."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import FIXTURES

MD_FIXTURES = FIXTURES / "md"
SCENARIOS = sorted(p.name for p in MD_FIXTURES.iterdir() if p.is_dir())


@dataclass
class MdTree:
    """A writable copy of one capture: PROC/mdstat and SYS/block/mdN."""

    proc: Path
    sys: Path

    def args(self) -> list[str]:
        """Return the CLI options pointing at this tree."""
        return ["--proc-root", str(self.proc), "--sys-root", str(self.sys)]

    def md(self, name: str = "md0") -> Path:
        """Return the md folder of one array."""
        return self.sys / "block" / name / "md"

    def set(self, relative: str, value: str, array: str = "md0") -> None:
        """Write one sysfs attribute (relative to SYS/block/ARRAY/md)."""
        path = self.md(array) / relative
        path.chmod(0o644) if path.exists() else None
        path.write_text(value + "\n")


@pytest.fixture
def md_tree(tmp_path: Path) -> Callable[[str], MdTree]:
    """Return a function copying a capture into a fresh writable tree."""
    counter = iter(range(1000))

    def make(scenario: str) -> MdTree:
        source = MD_FIXTURES / scenario
        root = tmp_path / f"{scenario}-{next(counter)}"
        proc = root / "proc"
        sys = root / "sys" / "block"
        proc.mkdir(parents=True)
        sys.mkdir(parents=True)
        shutil.copyfile(source / "mdstat", proc / "mdstat")
        sysfs = source / "sysfs"
        if sysfs.is_dir():
            for array in sysfs.iterdir():
                shutil.copytree(array, sys / array.name)
        for path in root.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        return MdTree(proc, root / "sys")

    return make

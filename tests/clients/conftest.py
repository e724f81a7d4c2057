"""The real monitoring clients (Debian packages) and the outputs they are fed."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from durability.model import Report
from tests.conftest import FIXTURES, CliResult

MD_FIXTURES = FIXTURES / "md"
SCENARIOS = sorted(p.name for p in MD_FIXTURES.iterdir() if p.is_dir())
# Debian package providing each tool (scripts/setup.sh --test installs them).
PACKAGES = {
    "promtool": "prometheus",
    "prometheus-node-exporter": "prometheus-node-exporter",
    "nagios4": "nagios4-core",
    "systemd-analyze": "systemd",
}


def tool(name: str) -> str:
    """Return the path of a client program, or skip the test saying which package lacks."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package {PACKAGES.get(name, name)})")
    return path


def capture_tree(root: Path, scenario: str) -> tuple[Path, Path]:
    """Copy one capture into PROC and SYS folders under root; return (proc, sys)."""
    source = MD_FIXTURES / scenario
    proc = root / scenario / "proc"
    block = root / scenario / "sys" / "block"
    proc.mkdir(parents=True)
    block.mkdir(parents=True)
    shutil.copyfile(source / "mdstat", proc / "mdstat")
    if (source / "sysfs").is_dir():
        for array in (source / "sysfs").iterdir():
            shutil.copytree(array, block / array.name)
    return proc, root / scenario / "sys"


def md_state_reports(tmp: Path) -> Iterator[tuple[str, Report]]:
    """Yield (name, report) for every mdstat state of tests/raid/test_md_states.py."""
    from tests.raid.test_md_states import STATES, judge_text, mdstat

    for index, (name, (blocks, _, _, _)) in enumerate(sorted(STATES.items())):
        folder = tmp / f"state-{index}"
        folder.mkdir(parents=True)
        yield name, judge_text(folder, mdstat(*blocks))


@pytest.fixture
def fixture_outputs(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> Callable[[str], dict[str, str]]:
    """Return a function giving {name: output} of every fixture in one format.

    Every captured kernel state (through the CLI), every mdstat state sample, the
    golden reports, a garbage mdstat, a usage error and a config error.
    """

    def outputs(fmt: str) -> dict[str, str]:
        from durability.render import render

        found: dict[str, str] = {}
        for scenario in SCENARIOS:
            proc, sys = capture_tree(tmp_path / fmt, scenario)
            result = cli("raid", "--proc-root", proc, "--sys-root", sys, "--format", fmt)
            found[f"capture {scenario}"] = result.stdout
        for name, report in md_state_reports(tmp_path / f"{fmt}-states"):
            found[f"state {name}"] = render(report, fmt)
        garbage = tmp_path / f"{fmt}-garbage"
        garbage.mkdir()
        (garbage / "mdstat").write_bytes(
            b"Personalities : [raid1]\nmd0 : active raid1 sdb1[1] sda1[0]\n"
            b"      1048512 blocks super 1.2 [2/2] [UU]\n      \x00\xff\xfe; | junk\n\n"
        )
        found["garbage mdstat"] = cli(
            "raid", "--proc-root", garbage, "--sys-root", garbage, "--format", fmt
        ).stdout
        found["usage error"] = cli("raid", "--expect", "bogus", "--format", fmt).stdout
        found["bad option"] = cli("raid", "--no-such-option", "--format", fmt).stdout
        bad = tmp_path / f"{fmt}-bad.toml"
        bad.write_text("[raid]\nstall_after = 5\nbogus = 1\n")
        found["config error"] = cli("--config", bad, "raid", "--format", fmt).stdout
        return found

    return outputs

"""scripts/node-lab.sh: its result checker on real durability output, its refusals, and
(with DURABILITY_NODE_LAB=1) the whole lab in a QEMU guest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.raid.conftest import MdTree

VERIFY = REPO / "lab" / "verify.py"
SCRIPT = REPO / "scripts" / "node-lab.sh"
LAB_VARIABLE = "DURABILITY_NODE_LAB"


def durability(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run the installed durability command (a real process, as the unit does)."""
    return subprocess.run(
        [sys.executable, "-m", "durability.cli", *argv],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
    )


def verify(out: Path, only: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(VERIFY), str(out), "--only", only],
        capture_output=True, text=True, timeout=60, check=False,
    )


def clean_folder(tree: MdTree, out: Path, code: int = 0) -> Path:
    """Write a `clean` scenario folder from durability's real output on a capture."""
    folder = out / "clean"
    folder.mkdir(parents=True)
    common = [*tree.args(), "--no-state", "--no-smart"]
    document = durability("raid", "--format", "json", *common)
    assert document.returncode == code, document.stderr
    (folder / "raid.json").write_text(document.stdout)
    prom = durability("raid", "--format", "prometheus", *common)
    assert prom.returncode == code, prom.stderr
    (folder / "durability_raid.prom").write_text(prom.stdout)
    shutil.copyfile(tree.proc / "mdstat", folder / "mdstat")
    (folder / "journal.txt").write_text("")
    (folder / "mdadm-events.txt").write_text("")
    (folder / "timer.txt").write_text(
        "Tue 2026-12-01 22:31:41 UTC 4min 18s left Tue 2026-12-01 22:25:38 UTC 1min 44s ago "
        "durability-raid.timer durability-raid.service\n"
    )
    (folder / "facts.txt").write_text(
        "unit_result=success\nunit_exit_status=0\nmdmonitor=active\n"
    )
    return folder


def test_checker_refuses_members_without_udev_identity(md_tree, tmp_path: Path) -> None:
    """A clean array whose members lack udev's serial and by-id link does not pass."""
    clean_folder(md_tree("raid1-clean"), tmp_path)
    done = verify(tmp_path, "clean")
    assert done.returncode == 1
    assert done.stdout.startswith("FAIL clean: no member with udev serial nodelab-d0")


def give_udev_identity(folder: Path) -> None:
    """Add the serial and by-id link udev gives the lab's disks to raid.json's members."""
    document = json.loads((folder / "raid.json").read_text())
    for member, serial in zip(document["results"][0]["data"]["members"], ("d0", "d1"), strict=True):
        member["serial"] = f"nodelab-{serial}"
        member["by_id"] = f"/dev/disk/by-id/virtio-nodelab-{serial}"
    (folder / "raid.json").write_text(json.dumps(document))


def test_checker_passes_members_with_udev_identity(md_tree, tmp_path: Path) -> None:
    folder = clean_folder(md_tree("raid1-clean"), tmp_path)
    give_udev_identity(folder)
    done = verify(tmp_path, "clean")
    assert done.returncode == 0, done.stdout
    assert done.stdout.startswith("PASS clean: md0 OK")


def test_checker_refuses_a_textfile_that_disagrees(md_tree, tmp_path: Path) -> None:
    folder = clean_folder(md_tree("raid1-clean"), tmp_path)
    faulty = clean_folder(md_tree("raid1-faulty"), tmp_path / "faulty", code=2)
    shutil.copyfile(faulty / "durability_raid.prom", folder / "durability_raid.prom")
    done = verify(tmp_path, "clean")
    assert done.returncode == 1
    assert "textfile says 2, raid.json says OK" in done.stdout


def test_checker_refuses_a_timer_that_never_fired(md_tree, tmp_path: Path) -> None:
    folder = clean_folder(md_tree("raid1-clean"), tmp_path)
    give_udev_identity(folder)
    (folder / "timer.txt").write_text(
        "n/a n/a n/a n/a durability-raid.timer durability-raid.service\n"
    )
    done = verify(tmp_path, "clean")
    assert done.returncode == 1
    assert "durability-raid.timer is not active or never fired" in done.stdout


def test_checker_reports_a_missing_scenario(tmp_path: Path) -> None:
    done = verify(tmp_path, "member-failed usb-hotplug")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "FAIL member-failed: no results (the guest did not get there)",
        "FAIL usb-hotplug: no results (the guest did not get there)",
    ]


def test_script_refuses_a_folder_it_did_not_write(tmp_path: Path) -> None:
    """OUT holding other files is left alone, before anything is built."""
    (tmp_path / "keep.txt").write_text("mine")
    done = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=60,
        check=False, env={**os.environ, "NODELAB_CACHE": str(tmp_path / "cache")},
    )
    assert done.returncode == 1
    assert "is not empty and not an earlier node-lab result" in done.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"
    assert not (tmp_path / "cache").exists()


@pytest.mark.slow
@pytest.mark.lab
@pytest.mark.timeout(3600)
def test_node_lab(tmp_path: Path) -> None:
    """Every scenario holds in a real Debian guest (kernel md, udev, systemd, mdadm)."""
    if os.environ.get(LAB_VARIABLE) != "1":
        pytest.skip(f"boots a QEMU guest for 15 to 30 minutes: set {LAB_VARIABLE}=1")
    if os.geteuid() != 0 or shutil.which("qemu-system-x86_64") is None:
        pytest.skip("needs root and qemu-system-x86_64")
    out = tmp_path / "out"
    done = subprocess.run(
        ["bash", str(SCRIPT), str(out)], capture_output=True, text=True, timeout=3500,
        check=False,
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    names = [line.split()[1].rstrip(":") for line in lines if line.startswith("PASS ")]
    assert names == [
        "clean", "member-failed", "rebuilding", "rebuilt", "check-scrub", "scrub-done",
        "rebuild-stalled", "usb-hotplug", "replacing",
    ]
    for name in ("clean", "member-failed", "rebuilding", "rebuilt", "check-scrub"):
        for artifact in ("raid.json", "durability_raid.prom", "mdstat", "journal.txt"):
            assert (out / name / artifact).is_file(), f"{name}/{artifact}"
    assert "Fail" in (out / "member-failed" / "mdadm-events.txt").read_text()

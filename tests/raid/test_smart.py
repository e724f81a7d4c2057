"""SMART of member disks: smartctl's JSON and exit bits, a missing smartctl, a real smartctl.

A failing disk cannot be produced on this machine, so failing verdicts come from a small
stand-in script that prints smartctl's JSON; the real smartctl runs where a disk exists.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from durability.config.raid import RaidSettings
from durability.model import Status
from durability.raid.check import evaluate, gather
from durability.raid.disks import parse_smartctl, read_smart
from durability.raid.evaluate import RaidPolicy
from tests.raid.conftest import MdTree

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def _doc(passed: bool | None, message: str | None = None) -> str:
    document: dict[str, object] = {"smartctl": {"version": [7, 3]}}
    if passed is not None:
        document["smart_status"] = {"passed": passed}
    if message:
        document["smartctl"] = {"messages": [{"string": message, "severity": "error"}]}
    return json.dumps(document)


def test_parse_smartctl_passed_failed_prefail_and_unknown() -> None:
    assert parse_smartctl("sda", 0, _doc(True)).passed is True
    failed = parse_smartctl("sda", 8, _doc(False))
    assert failed.passed is False and "FAILED" in failed.reason
    prefail = parse_smartctl("sda", 16, _doc(True))
    assert prefail.passed is False and "pre-failure" in prefail.reason
    unknown = parse_smartctl("sda", 2, _doc(None, "Permission denied"))
    assert unknown.passed is None and unknown.reason == "Permission denied"
    assert parse_smartctl("sda", 0, "not json").passed is None


def _fake_smartctl(tmp_path: Path, failing: set[str]) -> str:
    script = tmp_path / "smartctl"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"failing = {sorted(failing)!r}\n"
        "disk = sys.argv[-1].rsplit('/', 1)[-1]\n"
        "ok = disk not in failing\n"
        "print(json.dumps({'smart_status': {'passed': ok}}))\n"
        "sys.exit(0 if ok else 8)\n"
    )
    script.chmod(0o755)
    return str(script)


def _judge(tree: MdTree, smartctl: str):
    settings = RaidSettings(proc_root=str(tree.proc), sys_root=str(tree.sys), smartctl=smartctl)
    gathered = gather(settings, smart=True)
    return evaluate(gathered, RaidPolicy(), {}, NOW)


def test_smart_failing_member_of_whole_mirror_warns(
    md_tree: Callable[[str], MdTree], tmp_path: Path
) -> None:
    report = _judge(md_tree("raid1-clean"), _fake_smartctl(tmp_path, {"vdb"}))
    result = report.results[0]
    assert result.status is Status.WARNING
    assert "member vdb (vdb): SMART overall health: FAILED" in result.summary
    member = [m for m in result.data["members"] if m["device"] == "vdb"][0]
    assert member["smart"] == {"passed": False, "reason": "SMART overall health: FAILED"}


def test_smart_failing_last_in_sync_mirror_is_critical(
    md_tree: Callable[[str], MdTree], tmp_path: Path
) -> None:
    report = _judge(md_tree("raid1-recovery"), _fake_smartctl(tmp_path, {"vda"}))
    result = report.results[0]
    assert result.status is Status.CRITICAL
    assert "on the last in-sync mirror" in result.summary


def test_smart_missing_smartctl_is_a_note_never_unknown(
    md_tree: Callable[[str], MdTree], tmp_path: Path
) -> None:
    report = _judge(md_tree("raid1-faulty"), str(tmp_path / "no-such-smartctl"))
    assert report.status is Status.CRITICAL  # the RAID verdict stands
    assert any("smartctl is not installed" in note for note in report.notes)
    assert all(r.status is not Status.UNKNOWN for r in report.results)


@pytest.mark.skipif(
    shutil.which("smartctl") is None or not os.path.exists("/dev/vda"),
    reason="needs Debian's smartctl and a /dev/vda disk",
)
def test_read_smart_real_smartctl_on_virtual_disk_says_why_unknown() -> None:
    health = read_smart("smartctl", "vda", 20)
    assert health.disk == "vda"
    if health.passed is None:
        assert health.reason  # e.g. "Unable to detect device type": a reason, not silence

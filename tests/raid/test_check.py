"""The RAID check end to end on real captured trees: bad input, member flags, levels."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from durability.config.raid import RaidSettings
from durability.model import Report, Status
from durability.raid.check import run_raid
from tests.conftest import CliResult
from tests.raid.conftest import MdTree

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def judge(tree: MdTree, **settings: object) -> Report:
    config = RaidSettings(proc_root=str(tree.proc), sys_root=str(tree.sys), **settings)
    return run_raid(config, {}, None, NOW, smart=False)


def only(report: Report):
    assert len(report.results) == 1, report.results
    return report.results[0]


def test_run_raid_no_mdstat_is_ok_without_expectations(tmp_path: Path) -> None:
    config = RaidSettings(proc_root=str(tmp_path), sys_root=str(tmp_path))
    report = run_raid(config, {}, None, NOW, smart=False)
    assert report.status is Status.OK
    assert report.summary == "no md arrays"


def test_run_raid_no_mdstat_with_expected_array_is_critical(tmp_path: Path) -> None:
    config = RaidSettings(proc_root=str(tmp_path), sys_root=str(tmp_path))
    report = run_raid(config, {"md0": 2}, None, NOW, smart=False)
    assert report.status is Status.CRITICAL
    assert "no md driver" in only(report).summary


def test_cli_expected_array_missing_is_critical(
    md_tree: Callable[[str], MdTree], cli: Callable[..., CliResult]
) -> None:
    result = cli(
        "raid",
        *md_tree("raid1-clean").args(),
        "--no-state",
        "--expect",
        "md1:2",
        "--expect",
        "md0:2",
    )
    assert result.code == 2
    assert "md1 missing: expected but not present" in result.stdout


def test_cli_expected_disk_count_differs_is_warning(
    md_tree: Callable[[str], MdTree], cli: Callable[..., CliResult]
) -> None:
    result = cli("raid", *md_tree("raid1-clean").args(), "--no-state", "--expect", "md0:3")
    assert result.code == 1
    assert "expected 3 active slots, has 2" in result.stdout


def test_run_raid_unreadable_mdstat_is_unknown_with_path(md_tree: Callable[[str], MdTree]) -> None:
    tree = md_tree("raid1-clean")
    (tree.proc / "mdstat").unlink()
    (tree.proc / "mdstat").mkdir()  # reading a folder fails even as root
    report = judge(tree)
    unknown = [r for r in report.results if r.target == "mdstat"][0]
    assert unknown.status is Status.UNKNOWN
    assert str(tree.proc / "mdstat") in unknown.summary and "directory" in unknown.summary
    # sysfs is still read: the array is judged, and an UNKNOWN never hides it
    assert [r.status for r in report.results if r.target == "md0"] == [Status.OK]


def test_run_raid_garbage_mdstat_is_unknown_naming_the_line(
    md_tree: Callable[[str], MdTree], cli: Callable[..., CliResult]
) -> None:
    tree = md_tree("raid1-clean")
    (tree.proc / "mdstat").write_text("\x00\x01 garbage\n")
    result = cli("raid", *tree.args(), "--no-state", "--format", "nagios")
    first = result.stdout.splitlines()[0]
    assert result.code == 3
    assert first.startswith("DURABILITY UNKNOWN - mdstat cannot parse")
    assert "line 1" in first
    assert "OK: md0:" in result.stdout  # sysfs still judged the array


def test_run_raid_one_unparseable_array_does_not_hide_others(
    md_tree: Callable[[str], MdTree],
) -> None:
    tree = md_tree("raid1-faulty")
    text = (tree.proc / "mdstat").read_text()
    text = text.replace(
        "unused devices", "md9 : active raid1 sdz[0](?)\n      1 blocks\n\nunused devices"
    )
    (tree.proc / "mdstat").write_text(text)
    report = judge(tree)
    statuses = {r.target: r.status for r in report.results}
    assert statuses == {"md0": Status.CRITICAL, "md9": Status.UNKNOWN}
    assert report.status is Status.CRITICAL  # UNKNOWN ranks below CRITICAL
    assert "line" in [r for r in report.results if r.target == "md9"][0].summary


def test_run_raid_missing_sysfs_judged_from_mdstat_and_says_so(
    md_tree: Callable[[str], MdTree],
) -> None:
    tree = md_tree("raid1-degraded-removed")
    import shutil

    shutil.rmtree(tree.sys / "block" / "md0")
    result = only(judge(tree))
    assert result.status is Status.CRITICAL
    assert any("judged from mdstat alone" in d for d in result.details)
    assert result.data["sources"] == ["mdstat"]


def test_run_raid_stopped_array_left_as_clear_is_ignored(md_tree: Callable[[str], MdTree]) -> None:
    tree = md_tree("raid1-clean")
    (tree.proc / "mdstat").write_text(
        (tree.proc / "mdstat").read_text().split("md0")[0] + "unused devices: <none>\n"
    )
    tree.set("array_state", "clear")
    report = judge(tree)
    assert report.results == () and report.summary == "no md arrays"


@pytest.mark.parametrize(
    ("flag", "status"),
    [
        ("blocked", Status.CRITICAL),
        ("write_error", Status.WARNING),
        ("want_replacement", Status.WARNING),
    ],
)
def test_run_raid_member_flag_sets_status(
    md_tree: Callable[[str], MdTree], flag: str, status: Status
) -> None:
    tree = md_tree("raid1-clean")
    tree.set("dev-vdb/state", f"in_sync,{flag}")
    result = only(judge(tree))
    assert result.status is status
    assert flag.replace("_", " ").split()[0] in result.summary


def test_run_raid_bad_blocks_and_errors_warn(md_tree: Callable[[str], MdTree]) -> None:
    tree = md_tree("raid1-clean")
    tree.set("dev-vda/bad_blocks", "1024 8\n4096 8")
    tree.set("dev-vdb/errors", "3")
    result = only(judge(tree))
    assert result.status is Status.WARNING
    text = " ".join(result.details)
    assert "2 bad-block range(s)" in text and "3 read error(s)" in text


def test_run_raid_faulty_member_on_complete_array_warns(md_tree: Callable[[str], MdTree]) -> None:
    tree = md_tree("raid1-spare")  # vdc is a spare: make it faulty, the mirror stays whole
    tree.set("dev-vdc/state", "faulty")
    result = only(judge(tree))
    assert result.status is Status.WARNING
    assert "faulty member vdc still attached" in result.summary


def test_run_raid_strict_rebuild_is_critical(md_tree: Callable[[str], MdTree]) -> None:
    assert only(judge(md_tree("raid1-recovery"), strict_rebuild=True)).status is Status.CRITICAL


def test_run_raid_read_only_warns_and_auto_read_only_is_ok(
    md_tree: Callable[[str], MdTree],
) -> None:
    tree = md_tree("raid1-clean")
    tree.set("array_state", "readonly")
    assert only(judge(tree)).status is Status.WARNING
    tree.set("array_state", "read-auto")
    result = only(judge(tree))
    assert result.status is Status.OK and "auto-read-only" in result.summary


def test_run_raid_pending_resync_warns(md_tree: Callable[[str], MdTree]) -> None:
    tree = md_tree("raid1-clean")
    text = (
        (tree.proc / "mdstat")
        .read_text()
        .replace("[2/2] [UU]\n", "[2/2] [UU]\n      resync=PENDING\n")
    )
    text = text.replace("md0 : active raid1", "md0 : active (auto-read-only) raid1")
    (tree.proc / "mdstat").write_text(text)
    tree.set("array_state", "read-auto")
    result = only(judge(tree))
    assert result.status is Status.WARNING
    assert "resync pending" in result.summary


def test_run_raid_mismatch_left_by_resync_means_nothing(md_tree: Callable[[str], MdTree]) -> None:
    tree = md_tree("raid1-mismatch")
    tree.set("last_sync_action", "resync")
    assert only(judge(tree)).status is Status.OK


def _degrade(tree: MdTree, level: str, disks: int, missing: int) -> None:
    tree.set("level", level)
    tree.set("raid_disks", str(disks))
    tree.set("degraded", str(missing))


@pytest.mark.parametrize(
    ("level", "disks", "missing", "status"),
    [
        ("raid6", 4, 1, Status.WARNING),
        ("raid6", 4, 2, Status.CRITICAL),
        ("raid5", 3, 1, Status.CRITICAL),
        ("raid10", 4, 1, Status.CRITICAL),
    ],
)
def test_run_raid_redundancy_left_by_level(
    md_tree: Callable[[str], MdTree], level: str, disks: int, missing: int, status: Status
) -> None:
    tree = md_tree("raid10-clean")
    _degrade(tree, level, disks, missing)
    for device in ("vdc", "vdd")[:missing]:
        tree.set(f"dev-{device}/state", "faulty")
    assert only(judge(tree)).status is status


def test_run_raid_three_way_mirror_one_down_warns(md_tree: Callable[[str], MdTree]) -> None:
    tree = md_tree("raid1-spare")
    tree.set("raid_disks", "3")
    tree.set("degraded", "1")
    result = only(judge(tree))
    assert result.status is Status.WARNING
    assert "2 of 3 mirrors in sync, redundancy left" in result.summary


def test_cli_config_errors_are_all_listed_with_exit_3(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[raid]\nexpect = ["md0:x"]\nstall_after = 5\ncolour = "red"\n')
    result = cli("--config", bad, "raid", "--format", "json")
    assert result.code == 3
    for key in ("raid.expect", "raid.stall_after", "raid.colour"):
        assert key in result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "UNKNOWN" and document["exit_code"] == 3
    assert "raid.colour" in document["summary"]


def test_cli_config_error_nagios_first_line_is_unknown(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[raid\n")
    result = cli("raid", "--config", bad, "--format", "nagios")
    assert result.code == 3
    assert result.stdout.startswith("DURABILITY UNKNOWN - config error in")


def test_cli_missing_named_config_is_exit_3(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    result = cli("--config", tmp_path / "nope.toml", "raid")
    assert result.code == 3 and "file not found" in result.stderr


def test_cli_usage_error_exits_3_not_2(cli: Callable[..., CliResult]) -> None:
    result = cli("raid", "--format", "yaml")
    assert result.code == 3
    assert "invalid choice" in result.stderr


def test_cli_unwritable_output_is_unknown(
    md_tree: Callable[[str], MdTree], cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    result = cli(
        "raid",
        *md_tree("raid1-clean").args(),
        "--no-state",
        "--format",
        "prometheus",
        "--output",
        tmp_path / "missing-dir" / "x.prom",
    )
    assert result.code == 3 and "cannot write" in result.stderr


def test_cli_raid_works_without_any_config(
    md_tree: Callable[[str], MdTree], python: str, tmp_path: Path
) -> None:
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "DURABILITY_CONFIG"}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    done = subprocess.run(
        [
            python,
            "-m",
            "durability.cli",
            "raid",
            *md_tree("raid1-clean").args(),
            "--no-state",
            "--format",
            "nagios",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("DURABILITY OK - md0: raid1 clean: 2 of 2 mirrors in sync")

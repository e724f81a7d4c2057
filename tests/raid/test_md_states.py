"""Every state the kernel's md driver prints in /proc/mdstat, and the verdict on it.

The samples are written from the kernel's own format strings (drivers/md/md.c,
`md_seq_show` and `status_resync`, and each personality's `status`), one state each,
and judged from mdstat alone (an empty sysfs tree) unless the test says otherwise.
docs/raid.md lists the same states and verdicts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from durability.config.raid import RaidSettings
from durability.model import Report, Status
from durability.raid.check import run_raid
from durability.raid.mdstat import parse_mdstat
from tests.conftest import CliResult
from tests.raid.conftest import MdTree

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
HEAD = "Personalities : [linear] [multipath] [raid0] [raid1] [raid6] [raid5] [raid4] [raid10] \n"
TAIL = "unused devices: <none>\n"


def mdstat(*blocks: str) -> str:
    """Return a whole mdstat: the header, each block followed by md's blank line, the tail."""
    return HEAD + "".join(block.rstrip("\n") + "\n      \n" for block in blocks) + TAIL


def judge_text(tmp_path: Path, text: str, **settings: object) -> Report:
    proc = tmp_path / "proc"
    sys = tmp_path / "sys"
    proc.mkdir(exist_ok=True)
    sys.mkdir(exist_ok=True)
    (proc / "mdstat").write_text(text, encoding="utf-8")
    config = RaidSettings(proc_root=str(proc), sys_root=str(sys), **settings)
    return run_raid(config, {}, None, NOW, smart=False)


def result_of(report: Report, target: str = "md0"):
    found = [r for r in report.results if r.target == target]
    assert len(found) == 1, report.results
    return found[0]


# id: (mdstat blocks, status of md0, words its summary holds, data checks)
STATES: dict[str, tuple[tuple[str, ...], Status, str, dict[str, object]]] = {
    "raid1-clean": (
        ("md0 : active raid1 sdb1[1] sda1[0]\n      1048512 blocks super 1.2 [2/2] [UU]",),
        Status.OK,
        "2 of 2 mirrors in sync",
        {"sync_action": "idle", "degraded": 0},
    ),
    "super-0.90-no-super-word": (
        ("md0 : active raid1 sdb1[1] sda1[0]\n      1048512 blocks [2/2] [UU]",),
        Status.OK,
        "2 of 2 mirrors in sync",
        {},
    ),
    "super-non-persistent": (
        (
            "md0 : active raid1 sdb1[1] sda1[0]\n      1048512 blocks super non-persistent [2/2] [UU]",
        ),
        Status.OK,
        "2 of 2 mirrors in sync",
        {},
    ),
    "bitmap-line": (
        (
            "md0 : active raid1 sdb1[1] sda1[0]\n      1048512 blocks super 1.2 [2/2] [UU]\n"
            "      bitmap: 1/8 pages [4KB], 65536KB chunk",
        ),
        Status.OK,
        "2 of 2 mirrors in sync",
        {},
    ),
    "bitmap-file": (
        (
            "md0 : active raid1 sdb1[1] sda1[0]\n      1048512 blocks super 1.2 [2/2] [UU]\n"
            "      bitmap: 0/8 pages [0KB], 65536KB chunk, file: /var/md0.bitmap",
        ),
        Status.OK,
        "2 of 2 mirrors in sync",
        {},
    ),
    "inactive": (
        ("md0 : inactive sdb1[1](S) sda1[0](S)\n      2097024 blocks super 1.2",),
        Status.CRITICAL,
        "inactive",
        {"array_state": "inactive"},
    ),
    "read-only": (
        (
            "md0 : active (read-only) raid1 sdb1[1] sda1[0]\n      1048512 blocks super 1.2 [2/2] [UU]",
        ),
        Status.WARNING,
        "read-only",
        {"read_only": "read-only"},
    ),
    "auto-read-only": (
        (
            "md0 : active (auto-read-only) raid1 sdb1[1] sda1[0]\n"
            "      1048512 blocks super 1.2 [2/2] [UU]",
        ),
        Status.OK,
        "auto-read-only",
        {"read_only": "auto-read-only"},
    ),
    "auto-read-only-resync-pending": (
        (
            "md0 : active (auto-read-only) raid1 sdb1[1] sda1[0]\n"
            "      1048512 blocks super 1.2 [2/2] [UU]\n\tresync=PENDING",
        ),
        Status.WARNING,
        "resync pending",
        {"sync_action": "resync", "sync_state": "PENDING"},
    ),
    "linear": (
        ("md0 : active linear sdb1[1] sda1[0]\n      2097024 blocks super 1.2 0k rounding",),
        Status.OK,
        "no redundancy",
        {"level": "linear"},
    ),
    "raid0": (
        ("md0 : active raid0 sdb1[1] sda1[0]\n      2095104 blocks super 1.2 512k chunks",),
        Status.OK,
        "no redundancy",
        {"level": "raid0"},
    ),
    "multipath": (
        ("md0 : active multipath sdc[1] sdb[0]\n      1048512 blocks [2/2] [UU]",),
        Status.OK,
        "2 of 2 mirrors in sync",
        {"level": "multipath"},
    ),
    "raid1-degraded-no-rebuild": (
        ("md0 : active raid1 sda1[0]\n      1048512 blocks super 1.2 [2/1] [U_]",),
        Status.CRITICAL,
        "no rebuild running",
        {"degraded": 1, "in_sync": 1},
    ),
    "raid1-3way-one-down": (
        ("md0 : active raid1 sdc1[2] sda1[0]\n      1048512 blocks super 1.2 [3/2] [U_U]",),
        Status.WARNING,
        "redundancy left",
        {"degraded": 1},
    ),
    "raid4-degraded": (
        (
            "md0 : active raid4 sdb1[1] sda1[0]\n"
            "      2095104 blocks super 1.2 level 4, 512k chunk, algorithm 0 [3/2] [UU_]",
        ),
        Status.CRITICAL,
        "no rebuild running",
        {"level": "raid4"},
    ),
    "raid5-clean": (
        (
            "md0 : active raid5 sdc1[3] sdb1[1] sda1[0]\n"
            "      2095104 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/3] [UUU]",
        ),
        Status.OK,
        "3 of 3 devices in sync",
        {},
    ),
    "raid6-one-down": (
        (
            "md0 : active raid6 sdd1[3] sdc1[2] sda1[0]\n"
            "      2095104 blocks super 1.2 level 6, 512k chunk, algorithm 2 [4/3] [U_UU]",
        ),
        Status.WARNING,
        "redundancy left",
        {},
    ),
    "raid6-two-down": (
        (
            "md0 : active raid6 sdd1[3] sda1[0]\n"
            "      2095104 blocks super 1.2 level 6, 512k chunk, algorithm 2 [4/2] [U__U]",
        ),
        Status.CRITICAL,
        "no rebuild running",
        {},
    ),
    "raid10-near-one-down": (
        (
            "md0 : active raid10 sdd1[3] sdc1[2] sda1[0]\n"
            "      2095104 blocks super 1.2 512K chunks 2 near-copies [4/3] [U_UU]",
        ),
        Status.CRITICAL,
        "no rebuild running",
        {},
    ),
    "raid10-far-clean": (
        (
            "md0 : active raid10 sdb1[1] sda1[0]\n"
            "      1047552 blocks super 1.2 512K chunks 2 far-copies [2/2] [UU]",
        ),
        Status.OK,
        "2 of 2 devices in sync",
        {},
    ),
    "raid10-offset-clean": (
        (
            "md0 : active raid10 sdb1[1] sda1[0]\n"
            "      1047552 blocks super 1.2 512K chunks 2 offset-copies [2/2] [UU]",
        ),
        Status.OK,
        "2 of 2 devices in sync",
        {},
    ),
    "member-write-mostly": (
        ("md0 : active raid1 sdb1[1](W) sda1[0]\n      1048512 blocks super 1.2 [2/2] [UU]",),
        Status.OK,
        "write-mostly member sdb1",
        {},
    ),
    "member-faulty-complete-array": (
        (
            "md0 : active raid1 sdc1[2](F) sdb1[1] sda1[0]\n"
            "      1048512 blocks super 1.2 [2/2] [UU]",
        ),
        Status.WARNING,
        "faulty member sdc1 still attached",
        {},
    ),
    "member-faulty-degraded": (
        ("md0 : active raid1 sdb1[1](F) sda1[0]\n      1048512 blocks super 1.2 [2/1] [U_]",),
        Status.CRITICAL,
        "no rebuild running",
        {"in_sync": 1},
    ),
    "member-spare": (
        (
            "md0 : active raid1 sdc1[2](S) sdb1[1] sda1[0]\n"
            "      1048512 blocks super 1.2 [2/2] [UU]",
        ),
        Status.OK,
        "hot spare sdc1",
        {},
    ),
    "member-journal": (
        (
            "md0 : active raid5 sdd1[3](J) sdc1[2] sdb1[1] sda1[0]\n"
            "      2095104 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/3] [UUU]",
        ),
        Status.OK,
        "3 of 3 devices in sync",
        {"in_sync": 3},
    ),
    "member-replacement-running": (
        (
            "md0 : active raid1 sdc1[2](R) sdb1[1] sda1[0]\n"
            "      1048512 blocks super 1.2 [2/2] [UU]\n"
            "      [====>................]  recovery = 22.0% (230784/1048512) "
            "finish=0.5min speed=23078K/sec",
        ),
        Status.WARNING,
        "rebuilding",
        {"sync_action": "recover", "in_sync": 2},
    ),
    "resync-running": (
        (
            "md0 : active raid1 sdb1[1] sda1[0]\n      1048512 blocks super 1.2 [2/2] [UU]\n"
            "      [=>...................]  resync =  8.3% (87424/1048512) "
            "finish=1.2min speed=12489K/sec",
        ),
        Status.WARNING,
        "resyncing",
        {"sync_action": "resync", "sync_state": "running"},
    ),
    "recovery-running": (
        (
            "md0 : active raid1 sdc1[2] sda1[0]\n      1048512 blocks super 1.2 [2/1] [U_]\n"
            "      [=>...................]  recovery =  9.4% (98560/1048512) "
            "finish=0.7min speed=22421K/sec",
        ),
        Status.WARNING,
        "rebuilding",
        {"sync_action": "recover"},
    ),
    "check-running": (
        (
            "md0 : active raid1 sdb1[1] sda1[0]\n      1048512 blocks super 1.2 [2/2] [UU]\n"
            "      [===>.................]  check = 17.5% (183552/1048512) "
            "finish=0.3min speed=45888K/sec",
        ),
        Status.OK,
        "check scrub running",
        {"sync_action": "check"},
    ),
    "reshape-running": (
        (
            "md0 : active raid5 sdd1[4] sdc1[3] sdb1[1] sda1[0]\n"
            "      2095104 blocks super 1.2 level 5, 512k chunk, algorithm 2 [4/4] [UUUU]\n"
            "      [====>................]  reshape = 21.9% (230400/1047552) "
            "finish=1.1min speed=11520K/sec",
        ),
        Status.WARNING,
        "reshaping",
        {"sync_action": "reshape"},
    ),
    "reshape-raid5-degraded-no-redundancy": (
        (
            "md0 : active raid5 sdc1[3] sdb1[1] sda1[0]\n"
            "      2095104 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/2] [UU_]\n"
            "      [===========>.........]  reshape = 56.1% (587776/1047552) "
            "finish=12.3min speed=620K/sec",
        ),
        Status.CRITICAL,
        "no redundancy left and a reshape running",
        {"sync_action": "reshape"},
    ),
    "reshape-raid6-two-down": (
        (
            "md0 : active raid6 sdf1[5] sde1[4] sdb1[1] sda1[0]\n"
            "      4190208 blocks super 1.2 level 6, 512k chunk, algorithm 2 [6/4] [UUUU__]\n"
            "      [=>...................]  reshape =  7.0% (73344/1047552) "
            "finish=20.4min speed=795K/sec",
        ),
        Status.CRITICAL,
        "nothing is rebuilt until it ends",
        {"sync_action": "reshape"},
    ),
    "reshape-raid6-one-down": (
        (
            "md0 : active raid6 sde1[4] sdc1[2] sdb1[1] sda1[0]\n"
            "      3142656 blocks super 1.2 level 6, 512k chunk, algorithm 2 [5/4] [UUU_U]\n"
            "      [=>...................]  reshape =  7.0% (73344/1047552) "
            "finish=20.4min speed=795K/sec",
        ),
        Status.WARNING,
        "reshaping",
        {"sync_action": "reshape"},
    ),
    "resync-pending": (
        (
            "md0 : active raid1 sdb1[1] sda1[0]\n      1048512 blocks super 1.2 [2/2] [UU]\n"
            "\tresync=PENDING",
        ),
        Status.WARNING,
        "resync pending",
        {"sync_action": "resync", "sync_state": "PENDING"},
    ),
    "resync-delayed-clean": (
        (
            "md0 : active raid1 sdb1[1] sda1[0]\n      1048512 blocks super 1.2 [2/2] [UU]\n"
            "\tresync=DELAYED",
        ),
        Status.WARNING,
        "resync delayed",
        {"sync_action": "resync", "sync_state": "DELAYED"},
    ),
    "recovery-delayed-degraded-mirror": (
        (
            "md0 : active raid1 sdb1[2] sda1[0]\n      1048512 blocks super 1.2 [2/1] [_U]\n"
            "\tresync=DELAYED",
        ),
        Status.WARNING,
        "rebuilding: queued (delayed)",
        {"sync_action": "recover", "sync_state": "DELAYED"},
    ),
    "resync-remote": (
        (
            "md0 : active raid1 sdb1[1] sda1[0]\n      1048512 blocks super 1.2 [2/2] [UU]\n"
            "\tresync=REMOTE",
        ),
        Status.WARNING,
        "resyncing: running on another cluster node",
        {"sync_action": "resync", "sync_state": "REMOTE"},
    ),
    "recover-remote": (
        (
            "md0 : active raid1 sdb1[2] sda1[0]\n      1048512 blocks super 1.2 [2/1] [U_]\n"
            "\trecover=REMOTE",
        ),
        Status.WARNING,
        "rebuilding: running on another cluster node",
        {"sync_action": "recover", "sync_state": "REMOTE"},
    ),
    "reshape-remote": (
        (
            "md0 : active raid5 sdd1[4] sdc1[3] sdb1[1] sda1[0]\n"
            "      2095104 blocks super 1.2 level 5, 512k chunk, algorithm 2 [4/4] [UUUU]\n"
            "\treshape=REMOTE",
        ),
        Status.WARNING,
        "reshaping: running on another cluster node",
        {"sync_action": "reshape", "sync_state": "REMOTE"},
    ),
    "imsm-volume": (
        (
            "md126 : active raid1 sdb[1] sda[0]\n"
            "      976759808 blocks super external:/md127/0 [2/2] [UU]",
            "md127 : inactive sdb[1](S) sda[0](S)\n      5288 blocks super external:imsm",
        ),
        Status.OK,
        "2 of 2 mirrors in sync",
        {"target": "md126"},
    ),
}


@pytest.mark.parametrize("state", sorted(STATES))
def test_md_state_verdict(state: str, tmp_path: Path) -> None:
    blocks, status, words, data = STATES[state]
    data = dict(data)
    target = str(data.pop("target", "md0"))
    report = judge_text(tmp_path, mdstat(*blocks))
    result = result_of(report, target)
    assert result.status is status, result
    assert words in result.summary, result.summary
    for key, value in data.items():
        assert result.data[key] == value, (key, result.data)
    # an external-metadata container is never judged (nor CRITICAL for being inactive)
    assert all(r.target != "md127" for r in report.results)


def test_md_states_parse_without_errors() -> None:
    for state, (blocks, _, _, _) in STATES.items():
        parsed = parse_mdstat(mdstat(*blocks))
        assert parsed.errors == (), state


def test_mdstat_with_no_arrays_is_ok(tmp_path: Path) -> None:
    report = judge_text(tmp_path, HEAD + TAIL)
    assert report.status is Status.OK and report.summary == "no md arrays"


def test_block_without_status_line_is_unknown_for_that_array_only(tmp_path: Path) -> None:
    # The [n/m] [U_] line cut off by a blank line: never a guessed count.
    text = (
        HEAD
        + "md0 : active raid1 sdb1[1] sda1[0]\n\n      1048512 blocks super 1.2 [2/1] [U_]\n\n"
        + "md1 : active raid1 sdd1[1] sdc1[0]\n      1048512 blocks super 1.2 [2/2] [UU]\n\n"
        + TAIL
    )
    report = judge_text(tmp_path, text)
    md0 = result_of(report, "md0")
    assert md0.status is Status.UNKNOWN
    assert "no status line" in md0.summary and "in sync" not in md0.summary
    assert result_of(report, "md1").status is Status.OK
    assert report.status is Status.UNKNOWN


def test_block_without_status_line_is_judged_when_sysfs_fills_it_in(
    md_tree: Callable[[str], MdTree],
) -> None:
    tree = md_tree("raid1-faulty")
    lines = (tree.proc / "mdstat").read_text().splitlines()
    (tree.proc / "mdstat").write_text(
        "\n".join(line for line in lines if "blocks" not in line) + "\n"
    )
    config = RaidSettings(proc_root=str(tree.proc), sys_root=str(tree.sys))
    report = run_raid(config, {}, None, NOW, smart=False)
    assert result_of(report).status is Status.CRITICAL  # sysfs: degraded=1


def test_check_delayed_behind_another_array_is_ok(md_tree: Callable[[str], MdTree]) -> None:
    # Debian's monthly checkarray on two arrays sharing disks: the second one waits.
    tree = md_tree("raid1-clean")
    tree.set("sync_action", "check")
    tree.set("sync_completed", "delayed")
    (tree.proc / "mdstat").write_text(
        mdstat(
            "md0 : active raid1 vdb[1] vda[0]\n      64512 blocks super 1.2 [2/2] [UU]\n"
            "\tresync=DELAYED"
        )
    )
    config = RaidSettings(proc_root=str(tree.proc), sys_root=str(tree.sys))
    result = result_of(run_raid(config, {}, None, NOW, smart=False))
    assert result.status is Status.OK, result
    assert "check scrub queued" in result.summary
    assert result.data["sync_action"] == "check" and result.data["sync_state"] == "DELAYED"


def test_recovery_delayed_with_sysfs_reports_recover(
    md_tree: Callable[[str], MdTree], cli: Callable[..., CliResult]
) -> None:
    tree = md_tree("raid1-recovery")
    tree.set("sync_completed", "delayed")
    tree.set("sync_speed", "none")
    (tree.proc / "mdstat").write_text(
        mdstat(
            "md0 : active raid1 vdc[2] vda[0]\n      64512 blocks super 1.2 [2/1] [U_]\n"
            "\tresync=DELAYED"
        )
    )
    result = cli("raid", *tree.args(), "--no-state", "--format", "json")
    array = json.loads(result.stdout)["results"][0]
    assert result.code == 1
    assert array["data"]["sync_action"] == "recover"
    assert array["summary"].startswith("rebuilding: queued (delayed)")


def test_recovery_delayed_with_sysfs_idle_reports_recover(
    md_tree: Callable[[str], MdTree],
) -> None:
    # sysfs read a moment before md set the action: mdstat's queued line still counts.
    tree = md_tree("raid1-recovery")
    tree.set("sync_action", "idle")
    tree.set("sync_completed", "none")
    (tree.proc / "mdstat").write_text(
        mdstat(
            "md0 : active raid1 vdc[2] vda[0]\n      64512 blocks super 1.2 [2/1] [U_]\n"
            "\tresync=DELAYED"
        )
    )
    config = RaidSettings(proc_root=str(tree.proc), sys_root=str(tree.sys))
    result = result_of(run_raid(config, {}, None, NOW, smart=False))
    assert result.data["sync_action"] == "recover"
    assert result.status is Status.WARNING


def test_reshape_on_degraded_array_is_critical_even_when_rebuild_is_lenient(
    tmp_path: Path,
) -> None:
    blocks = STATES["reshape-raid5-degraded-no-redundancy"][0]
    report = judge_text(tmp_path, mdstat(*blocks), strict_rebuild=False)
    assert report.status is Status.CRITICAL
    assert report.exit_code == 2


def test_capture_run_never_writes_the_default_store(
    md_tree: Callable[[str], MdTree],
    cli: Callable[..., CliResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Judging a captured tree must not enter its arrays in this node's inventory (the
    # real node would then report "md0 missing").
    default = tmp_path / "default-state" / "state.db"
    monkeypatch.setattr("durability.state.store.default_sqlite_path", lambda: str(default))
    monkeypatch.delenv("DURABILITY_CONFIG", raising=False)
    monkeypatch.setattr("durability.config.DEFAULT_PATH", str(tmp_path / "absent.toml"))
    result = cli("raid", *md_tree("raid1-clean").args())
    assert result.code == 0
    assert "captured tree: nothing recorded in the default state store" in result.stdout
    assert not default.exists() and not default.parent.exists()


def test_capture_run_records_in_a_store_named_in_the_config(
    md_tree: Callable[[str], MdTree],
    cli: Callable[..., CliResult],
    tmp_path: Path,
) -> None:
    store = tmp_path / "captures.db"
    config = tmp_path / "captures.toml"
    config.write_text(f'[state]\npath = "{store}"\n')
    result = cli("--config", config, "raid", *md_tree("raid1-clean").args())
    assert result.code == 0 and "captured tree" not in result.stdout
    assert store.exists()


def test_recovery_target_is_no_hot_spare_when_judged_from_mdstat(tmp_path: Path) -> None:
    blocks = STATES["recovery-running"][0]
    result = result_of(judge_text(tmp_path, mdstat(*blocks)))
    assert not any("hot spare" in line for line in (result.summary, *result.details))
    # a real spare beside the rebuild is still one
    text = mdstat(
        "md0 : active raid1 sdd1[3](S) sdc1[2] sda1[0]\n"
        "      1048512 blocks super 1.2 [2/1] [U_]\n"
        "      [=>...................]  recovery =  9.4% (98560/1048512) "
        "finish=0.7min speed=22421K/sec"
    )
    folder = tmp_path / "spare"
    folder.mkdir()
    result = result_of(judge_text(folder, text))
    assert any(line == "OK: hot spare sdd1" for line in result.details), result.details


def test_ack_on_a_capture_refuses_the_default_store(
    md_tree: Callable[[str], MdTree],
    cli: Callable[..., CliResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    default = tmp_path / "default-state" / "state.db"
    monkeypatch.setattr("durability.state.store.default_sqlite_path", lambda: str(default))
    monkeypatch.delenv("DURABILITY_CONFIG", raising=False)
    monkeypatch.setattr("durability.config.DEFAULT_PATH", str(tmp_path / "absent.toml"))
    tree = md_tree("raid1-clean")
    result = cli("raid", "ack", "md0", *tree.args())
    assert result.code == 3 and "state.path" in result.stderr
    event = cli("raid", "event", "Fail", "/dev/md0", *tree.args())
    assert event.code == 0
    assert not default.parent.exists()

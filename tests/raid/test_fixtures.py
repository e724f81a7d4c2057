"""Every captured kernel state gets the SPEC verdict, in every format, with its exit code."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from tests.conftest import CliResult
from tests.raid.conftest import SCENARIOS, MdTree

# scenario: (status, words the summary must contain)
EXPECTED = {
    "empty": ("OK", "no md arrays"),
    "raid0": ("OK", "no redundancy"),
    "raid1-bitmap-recovery": ("WARNING", "rebuilding"),
    "raid1-check": ("OK", "check scrub running"),
    "raid1-check-done": ("OK", "2 of 2 mirrors in sync"),
    "raid1-clean": ("OK", "2 of 2 mirrors in sync"),
    "raid1-degraded-removed": ("CRITICAL", "degraded: 1 of 2 mirrors in sync, no rebuild running"),
    "raid1-faulty": ("CRITICAL", "degraded: 1 of 2 mirrors in sync, no rebuild running"),
    "raid1-inactive": ("CRITICAL", "inactive"),
    "raid1-mismatch": ("WARNING", "mismatch_cnt 2048"),
    "raid1-recovered": ("OK", "2 of 2 mirrors in sync"),
    "raid1-recovery": ("WARNING", "rebuilding"),
    "raid1-resync": ("WARNING", "resyncing"),
    "raid1-spare": ("OK", "hot spare vdc"),
    "raid1-write-mostly": ("OK", "write-mostly member vdb"),
    "raid10-clean": ("OK", "4 of 4 devices in sync"),
    "raid5-degraded": ("CRITICAL", "degraded: 2 of 3 devices in sync"),
}
CODES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}


def test_every_capture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_raid_capture_text_matches_spec(
    scenario: str, md_tree: Callable[[str], MdTree], cli: Callable[..., CliResult]
) -> None:
    status, words = EXPECTED[scenario]
    result = cli("raid", *md_tree(scenario).args(), "--no-state")
    assert result.code == CODES[status], result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{status}: ")
    assert words in first


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_raid_capture_json_matches_spec(
    scenario: str, md_tree: Callable[[str], MdTree], cli: Callable[..., CliResult]
) -> None:
    status, words = EXPECTED[scenario]
    result = cli("raid", *md_tree(scenario).args(), "--no-state", "--format", "json")
    document = json.loads(result.stdout)
    assert result.code == CODES[status]
    assert document["schema_version"] == 1
    assert document["status"] == status
    assert document["exit_code"] == CODES[status]
    assert words in document["summary"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["checked_at"])
    for item in document["results"]:
        data = item["data"]
        for key in (
            "level",
            "array_state",
            "raid_disks",
            "in_sync",
            "degraded",
            "sync_action",
            "sync_progress",
            "sync_eta_seconds",
            "mismatch_cnt",
            "members",
        ):
            assert key in data, key
        for member in data["members"]:
            assert {"device", "slot", "state", "errors", "bad_blocks"} <= set(member)
        assert data["in_sync"] == sum(
            1 for m in data["members"] if "in_sync" in m["state"] and "faulty" not in m["state"]
        )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_raid_capture_nagios_matches_spec(
    scenario: str, md_tree: Callable[[str], MdTree], cli: Callable[..., CliResult]
) -> None:
    status, words = EXPECTED[scenario]
    result = cli("raid", *md_tree(scenario).args(), "--no-state", "--format", "nagios")
    assert result.code == CODES[status]
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"DURABILITY {status} - ")
    assert words in first.split(" | ")[0]
    if scenario != "empty":
        assert " | " in first and "md0_raid_members_in_sync=" in first


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_raid_capture_prometheus_matches_spec(
    scenario: str, md_tree: Callable[[str], MdTree], cli: Callable[..., CliResult], tmp_path
) -> None:
    status, _ = EXPECTED[scenario]
    out = tmp_path / "raid.prom"
    result = cli(
        "raid", *md_tree(scenario).args(), "--no-state", "--format", "prometheus", "--output", out
    )
    assert result.code == CODES[status]
    assert result.stdout == ""
    text = out.read_text()
    assert 'durability_last_run_timestamp_seconds{check="raid"}' in text
    if scenario != "empty":
        assert f'durability_check_status{{check="raid",target="md0"}} {CODES[status]}.0' in text
    assert not list(tmp_path.glob(".durability-*"))  # no temporary file left behind


def test_raid_degraded_mirror_data_counts_match_kernel(
    md_tree: Callable[[str], MdTree], cli: Callable[..., CliResult]
) -> None:
    result = cli("raid", *md_tree("raid1-faulty").args(), "--no-state", "--format", "json")
    data = json.loads(result.stdout)["results"][0]["data"]
    assert data["degraded"] == 1
    assert data["in_sync"] == 1
    faulty = [m for m in data["members"] if m["device"] == "vdb"][0]
    assert faulty["state"] == ["faulty"] and faulty["slot"] is None


def test_raid_recovery_reports_progress_speed_and_eta(
    md_tree: Callable[[str], MdTree], cli: Callable[..., CliResult]
) -> None:
    result = cli("raid", *md_tree("raid1-recovery").args(), "--no-state", "--format", "json")
    data = json.loads(result.stdout)["results"][0]["data"]
    assert data["sync_action"] == "recover"
    assert data["sync_progress"] == pytest.approx(8192 / 129024, abs=1e-3)
    assert data["sync_eta_seconds"] == round((129024 - 8192) * 512 / (1045 * 1024))
    recovering = [m for m in data["members"] if m["device"] == "vdc"][0]
    assert recovering["state"] == ["spare"] and recovering["slot"] == 1

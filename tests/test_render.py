"""Golden files for the four renderers: one report rendered four ways.

Regenerate after an intended change with UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from durability.model import Metric, Report, Result, Status
from durability.render import render

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
EXTENSIONS = {"text": "txt", "json": "json", "nagios": "nagios", "prometheus": "prom"}


SYS_TREES: dict[str, Path] = {}


def sample_reports() -> dict[str, Report]:
    from durability.config.raid import RaidSettings
    from durability.raid.check import evaluate, gather
    from durability.raid.evaluate import RaidPolicy
    from tests.conftest import FIXTURES

    reports = {}
    for scenario in ("raid1-recovery", "raid1-faulty", "empty"):
        root = FIXTURES / "md" / scenario
        sysroot = SYS_TREES[scenario]
        settings = RaidSettings(proc_root=str(root), sys_root=str(sysroot))
        reports[scenario] = evaluate(gather(settings, False), RaidPolicy(), {}, NOW)
    reports["mixed"] = Report(
        check="check",
        checked_at=NOW,
        results=(
            Result(
                "raid",
                "md0",
                Status.OK,
                "raid1 clean: 2 of 2 mirrors in sync",
                metrics=(Metric("raid_members_in_sync", 2, "in sync", minimum=0, maximum=2),),
            ),
            Result(
                "snapshots",
                "web|restic",
                Status.UNKNOWN,
                "wrong password\nfor repository",
                details=("restic said: wrong password",),
                data={"source": "web"},
            ),
            Result(
                "snapshots",
                "db",
                Status.WARNING,
                "newest 27h old",
                metrics=(
                    Metric(
                        "snapshot_age_seconds", 97200.0, "age", uom="s", warn="93600", crit="117000"
                    ),
                ),
            ),
        ),
        notes=("smartctl is not installed",),
    )
    return reports


@pytest.fixture(scope="module", autouse=True)
def sysfs_trees(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Golden reports read sysfs through a tree of symlinks to the captures, built in a
    # temporary folder (never in the checkout).
    from tests.conftest import FIXTURES

    base = tmp_path_factory.mktemp("golden-sys")
    for scenario in ("raid1-recovery", "raid1-faulty", "empty"):
        block = base / scenario / "block"
        block.mkdir(parents=True)
        for array in (FIXTURES / "md" / scenario / "sysfs").glob("md*"):
            (block / array.name).symlink_to(array)
        SYS_TREES[scenario] = base / scenario


@pytest.mark.parametrize("fmt", list(EXTENSIONS))
@pytest.mark.parametrize("name", ["raid1-recovery", "raid1-faulty", "empty", "mixed"])
def test_render_matches_golden_file(name: str, fmt: str) -> None:
    text = render(sample_reports()[name], fmt)
    path = GOLDEN / f"{name}.{EXTENSIONS[fmt]}"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_render_nagios_keeps_one_status_line() -> None:
    first = render(sample_reports()["mixed"], "nagios").splitlines()[0]
    assert first.startswith("DURABILITY WARNING - db newest 27h old (+1 more problem) | ")
    assert "db_snapshot_age_seconds=97200s;93600;117000" in first


def test_render_json_is_schema_1_with_worst_status() -> None:
    document = json.loads(render(sample_reports()["mixed"], "json"))
    assert document["schema_version"] == 1
    assert document["status"] == "WARNING"  # UNKNOWN ranks below WARNING
    assert document["exit_code"] == 1
    assert [r["status"] for r in document["results"]] == ["OK", "UNKNOWN", "WARNING"]


def test_render_unknown_never_hides_critical() -> None:
    report = Report(
        "raid",
        NOW,
        (
            Result("raid", "md0", Status.UNKNOWN, "cannot read"),
            Result("raid", "md1", Status.CRITICAL, "degraded"),
        ),
    )
    assert report.status is Status.CRITICAL and report.exit_code == 2


def test_render_nagios_status_line_has_no_semicolon_pipe_or_raw_bytes() -> None:
    # Nagios rewrites ";" to ":", "|" starts perfdata; control characters and bytes the
    # input could not decode must never reach the status line.
    report = Report(
        "raid",
        NOW,
        (
            Result(
                "raid",
                "md0",
                Status.CRITICAL,
                "degraded; 1 of 2 | in sync\x00\x1b[31m\ufffd\u2028end",
                details=("line; with | and \x07bell",),
                metrics=(Metric("raid_members_in_sync", 1, minimum=0, maximum=2),),
            ),
        ),
    )
    lines = render(report, "nagios").splitlines()
    status, _, perfdata = lines[0].partition(" | ")
    assert status.startswith("DURABILITY CRITICAL - md0 degraded, 1 of 2 / in sync")
    for line in (status, *lines[1:]):
        assert ";" not in line and "|" not in line, line
        assert all(ch.isprintable() for ch in line), repr(line)
        assert "\ufffd" not in line
    assert perfdata == "md0_raid_members_in_sync=1;;;0;2"


def test_render_text_drops_control_characters() -> None:
    report = Report("raid", NOW, (Result("raid", "md0", Status.OK, "ok\x00\x1b[2J"),))
    assert all(ch.isprintable() for ch in render(report, "text").replace("\n", ""))


def test_render_prometheus_without_results_still_emits_a_status_sample() -> None:
    text = render(Report("raid", NOW, (), summary_override="no md arrays"), "prometheus")
    assert 'durability_check_status{check="raid",target="raid"} 0.0' in text
    assert 'durability_last_run_timestamp_seconds{check="raid"}' in text


def test_render_nagios_mismatch_sectors_is_not_a_counter() -> None:
    text = (GOLDEN / "raid1-recovery.nagios").read_text().splitlines()[0]
    mismatch = [p for p in text.split(" | ")[1].split() if "mismatch" in p]
    assert mismatch and mismatch[0].split(";")[0] == "md0_raid_mismatch_sectors=0"

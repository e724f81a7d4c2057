"""The mdstat parser: every level, flag combinations, progress lines, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from durability.errors import ParseError
from durability.raid.mdstat import parse_mdstat
from tests.raid.conftest import MD_FIXTURES, SCENARIOS

MANY = """\
Personalities : [raid1] [raid6] [raid5] [raid4] [raid10] [linear] [multipath] [raid0]
md5 : active raid6 sdf1[5] sde1[4] sdd1[3] sdc1[2] sdb1[1] sda1[0]
      7813772288 blocks super 1.2 level 6, 512k chunk, algorithm 2 [6/6] [UUUUUU]
      [===>.................]  reshape = 17.3% (338204160/1953443072) finish=1025.4min speed=26252K/sec
      bitmap: 2/15 pages [8KB], 65536KB chunk

md4 : active (auto-read-only) raid1 sdb4[1] sda4[0]
      1048512 blocks super 1.2 [2/2] [UU]
      \tresync=PENDING

md3 : active raid1 sdd2[1](W)(F) sdc2[0] sde2[2](S)(F)
      523264 blocks super 1.2 [2/1] [U_]
      resync=DELAYED

md2 : active (read-only) raid10 nvme1n1p3[1] nvme0n1p3[0]
      976630464 blocks super 1.2 2 near-copies [2/2] [UU]

md1 : active raid1 sdb2[2](R) sda2[0] sdc2[1](J)
      8384448 blocks super 1.2 [2/2] [UU]
      [>....................]  check =  0.3% (25984/8384448) finish=10.7min speed=12992K/sec

md127 : inactive sdb[1](S) sda[0](S)
      10402 blocks super external:imsm

md126 : active raid1 sda[1] sdb[0]
      975585280 blocks super external:/md127/0 [2/2] [UU]

md_d0 : active linear loop1[1] loop0[0]
      2048 blocks super 1.2 0k rounding

unused devices: <none>
"""


def test_parse_mdstat_every_shape_parses_each_array() -> None:
    parsed = parse_mdstat(MANY)
    assert not parsed.errors
    by_name = {a.name: a for a in parsed.arrays}
    assert list(by_name) == ["md5", "md4", "md3", "md2", "md1", "md127", "md126", "md_d0"]
    assert "raid6" in parsed.personalities
    md5 = by_name["md5"]
    assert md5.level == "raid6" and md5.raid_disks == 6 and md5.status_map == "UUUUUU"
    assert md5.sync is not None and md5.sync.action == "reshape"
    assert md5.sync.speed_kib == 26252 and md5.sync.finish_minutes == pytest.approx(1025.4)
    assert md5.bitmap == "2/15 pages [8KB], 65536KB chunk"
    md4 = by_name["md4"]
    assert md4.read_only == "auto-read-only"
    assert md4.sync is not None and (md4.sync.action, md4.sync.state) == ("resync", "PENDING")
    md3 = by_name["md3"]
    flags = {m.device: m.flags for m in md3.members}
    assert flags == {"sdd2": {"W", "F"}, "sdc2": frozenset(), "sde2": {"S", "F"}}
    assert md3.sync is not None and md3.sync.state == "DELAYED"
    assert by_name["md2"].read_only == "read-only" and by_name["md2"].near_copies == 2
    md1 = by_name["md1"]
    assert {m.device: m.flags for m in md1.members}["sdb2"] == {"R"}
    assert {m.device: m.flags for m in md1.members}["sdc2"] == {"J"}
    assert md1.sync is not None and md1.sync.action == "check"
    assert by_name["md127"].is_container and not by_name["md127"].active
    assert not by_name["md126"].is_container
    assert by_name["md_d0"].level == "linear"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_parse_mdstat_captures_parse_without_errors(scenario: str) -> None:
    parsed = parse_mdstat((MD_FIXTURES / scenario / "mdstat").read_text())
    assert not parsed.errors
    assert len(parsed.arrays) == (0 if scenario == "empty" else 1)


def test_parse_mdstat_bad_array_is_alone_and_names_its_line() -> None:
    text = MANY.replace("md2 : active (read-only) raid10", "md2 : active (read-only) raid10 ???")
    parsed = parse_mdstat(text)
    assert [e.name for e in parsed.errors] == ["md2"]
    assert parsed.errors[0].error.line == 15
    assert "md2" not in {a.name for a in parsed.arrays}
    assert len(parsed.arrays) == 7


def test_parse_mdstat_unknown_flag_is_an_error_for_that_array() -> None:
    text = MANY.replace("sdc2[1](J)", "sdc2[1](Q)")
    parsed = parse_mdstat(text)
    assert [e.name for e in parsed.errors] == ["md1"]
    assert "unknown member flag" in str(parsed.errors[0].error)


def test_parse_mdstat_stray_line_is_reported_with_its_number() -> None:
    parsed = parse_mdstat("Personalities : [raid1]\nhello world\nunused devices: <none>\n")
    assert parsed.errors[0].name is None
    assert parsed.errors[0].error.line == 2


def test_parse_mdstat_garbage_raises_naming_the_line() -> None:
    with pytest.raises(ParseError) as caught:
        parse_mdstat("\n\nthis is not mdstat\n")
    assert caught.value.line == 3
    assert "line 3" in str(caught.value)


def test_parse_mdstat_empty_text_has_no_arrays() -> None:
    assert parse_mdstat("").arrays == ()


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_parse_mdstat_arbitrary_text_never_crashes(text: str) -> None:
    try:
        parse_mdstat(text)
    except ParseError as error:
        assert error.line is not None and error.line >= 1


_LINES = MANY.splitlines()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_LINES), max_size=30),
    st.lists(st.tuples(st.integers(0, 29), st.text(max_size=12)), max_size=5),
)
def test_parse_mdstat_shuffled_real_lines_never_crash(lines: list[str], edits) -> None:
    lines = list(lines)
    for index, junk in edits:
        if lines:
            i = index % len(lines)
            lines[i] = lines[i][: len(lines[i]) // 2] + junk
    try:
        parsed = parse_mdstat("\n".join(lines))
    except ParseError as error:
        assert error.line is not None
        return
    for problem in parsed.errors:
        assert problem.error.line is not None

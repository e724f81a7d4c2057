"""The restic side of the helper: parsers, sampling, patterns, messages."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from durability.helper.repo import (
    FileNode,
    choose_sample,
    disk_full_message,
    explain,
    include_pattern,
    make_restic,
    next_subset,
    parse_backup_summary,
    parse_ls_files,
    parse_ls_snapshot_id,
    tree_size,
)
from durability.restic import ResticError

BACKUP_OUTPUT = "\n".join([
    json.dumps({"message_type": "status", "percent_done": 0.5}),
    json.dumps({
        "message_type": "summary", "files_new": 3, "total_files_processed": 3,
        "total_bytes_processed": 4096, "data_added": 5000, "snapshot_id": "1a2b3c4d",
    }),
])


def test_parse_backup_summary_reads_last_summary() -> None:
    summary = parse_backup_summary(BACKUP_OUTPUT)
    assert (summary.snapshot_id, summary.files, summary.bytes, summary.data_added) == (
        "1a2b3c4d", 3, 4096, 5000,
    )


def test_parse_backup_summary_without_summary_raises() -> None:
    with pytest.raises(ValueError, match="no summary"):
        parse_backup_summary('{"message_type": "status"}\nnot json\n')


def test_parse_ls_files_only_regular_files() -> None:
    text = "\n".join([
        json.dumps({"struct_type": "snapshot", "id": "x"}),
        json.dumps({"struct_type": "node", "type": "dir", "path": "/a"}),
        json.dumps({"struct_type": "node", "type": "file", "path": "/a/b", "size": 7,
                    "mtime": "2026-11-25T10:00:00.123456789+01:00"}),
        json.dumps({"struct_type": "node", "type": "symlink", "path": "/a/l"}),
    ])
    assert parse_ls_snapshot_id(text) == "x"
    assert parse_ls_snapshot_id("") is None
    [node] = parse_ls_files(text)
    assert node.path == "/a/b" and node.size == 7
    assert node.mtime is not None and node.mtime.hour == 9


def test_choose_sample_respects_count_and_bytes() -> None:
    files = [FileNode(f"/f{i}", size, None) for i, size in enumerate([10, 20, 5000, 30, 40])]
    sample = choose_sample(files, 3, 100, random.Random(1))
    assert len(sample) == 3
    assert sum(n.size for n in sample) <= 100
    assert all(n.size != 5000 for n in sample)


def test_next_subset_wraps() -> None:
    assert [next_subset(n, 3) for n in (1, 2, 3)] == [2, 3, 1]


def test_include_pattern_real_restic_restores_odd_names(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    odd = ["cat [1].jpg", "notes*.md", "what?.txt", "back\\slash"]
    for name in odd:
        (source / name).write_text(name)
    (source / "other.txt").write_text("not wanted")
    password = tmp_path / "pw"
    password.write_text("pw\n")
    restic = make_restic(str(tmp_path / "repo"), str(password), cache_dir=str(tmp_path / "c"))
    restic.run(["init"])
    restic.run(["backup", str(source)])
    target = tmp_path / "out"
    args = ["restore", "latest", "--target", str(target)]
    for name in odd:
        args += ["--include", include_pattern(str(source / name))]
    restic.run(args)
    restored = target / str(source).lstrip("/")
    assert sorted(p.name for p in restored.iterdir()) == sorted(odd)


def test_make_restic_password_command_replaces_file(tmp_path: Path) -> None:
    restic = make_restic(str(tmp_path / "repo"), "", "cat /dev/null")
    env = restic.env()
    assert env["RESTIC_PASSWORD_COMMAND"] == "cat /dev/null"
    assert env["RESTIC_PASSWORD_FILE"] == ""
    assert "cat /dev/null" not in " ".join(restic.argv(["snapshots"]))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ResticError("restic: restic: program not found"), "restic is not installed: install it"),
        (ResticError("write /x: no space left on device (restic exit 1)"), "disk D is full"),
        (ResticError("open /x: read-only file system"), "mounted read-only"),
        (ResticError("wrong password", "wrong-password"), "does not open the backup"),
        (ResticError("lock", "locked"), "locked by another restic run"),
        (ResticError("odd"), "restic failed: odd"),
    ],
)
def test_explain_kinds_one_line(error: ResticError, expected: str) -> None:
    message = explain(error, "D", needed=10, free=1)
    assert expected in message
    assert "\n" not in message


def test_disk_full_message_says_how_much() -> None:
    message = disk_full_message("D", 3 * 1024**3, 1024**3)
    assert "needs up to 3.0 GiB, 1.0 GiB is free" in message


def test_tree_size_counts_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"12345")
    (tmp_path / "y").write_bytes(b"123")
    assert tree_size([str(tmp_path / "a"), str(tmp_path / "y")]) == (2, 8)


def test_restic_is_the_debian_version() -> None:
    done = subprocess.run(["restic", "version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("restic ")


def test_parse_ls_files_bad_line_is_an_error_not_skipped() -> None:
    from durability.errors import ParseError

    text = json.dumps({"struct_type": "node", "type": "file", "path": "/a", "size": 1})
    with pytest.raises(ParseError, match="line 2: restic ls: not JSON"):
        parse_ls_files(text + "\n{truncated\n")


def test_choose_sample_skips_names_restic_listed_with_replaced_bytes() -> None:
    text = "\n".join([
        json.dumps({"struct_type": "node", "type": "file", "path": "/caf\ufffd", "size": 1}),
        json.dumps({"struct_type": "node", "type": "file", "path": "/ok", "size": 1}),
    ])
    files = parse_ls_files(text)
    assert [n.exact for n in files] == [False, True]
    assert [n.path for n in choose_sample(files, 5, 100, random.Random(1))] == ["/ok"]

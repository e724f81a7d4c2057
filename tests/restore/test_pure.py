"""Pure parts of the restore test: parsing, classification, comparison, verdict."""

from __future__ import annotations

import base64
import hashlib
import random
from datetime import UTC, datetime, timedelta

import pytest

from durability.model import Status
from durability.restic import ResticLock, ResticSnapshot
from durability.resticls import Node
from durability.restore import resticops as ops
from durability.restore.outcome import Outcome, PhaseTimer, evaluate_restore
from durability.restore.s3restore import (
    S3Object,
    choose_object,
    expected_checksum,
    full_restore_bytes,
    parse_manifest,
)
from durability.restore.verify import Entry, Mismatch, TreeComparison, coverage_of

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

LOCKED_STDERR = """\
unable to create lock in backend: repository is already locked exclusively by PID 4242 on web1 by backup (UID 0, GID 0)
lock was created at 2026-11-25 09:59:00 (1m0.5s ago)
storage ID c8c0fbcd
the `unlock` command can be used to remove stale locks
"""

TREE_STDERR = """\
decrypting blob ad19354b failed: ciphertext verification failed
github.com/restic/restic/internal/repository.(*Repository).LoadBlob
\tgithub.com/restic/restic/internal/repository/repository.go:303
Fatal: There were 2 errors
"""


def _snapshot(short: str, when: datetime) -> ResticSnapshot:
    return ResticSnapshot(id=short * 8, short_id=short, time=when, hostname="h", paths=("/srv",))


@pytest.mark.parametrize(
    ("stderr", "code", "kind"),
    [
        ("Fatal: wrong password or no key found\n", 1, ops.KIND_PASSWORD),
        (LOCKED_STDERR, 1, ops.KIND_LOCKED),
        ("Fatal: unable to open config file: stat /x/config: no such file or directory\n"
         "Is there a repository at the following location?\n/x\n", 1,
         ops.KIND_MISSING_REPOSITORY),
        (TREE_STDERR, 1, ops.KIND_DATA),
        ("ignoring error for /a: write /t/a: no space left on device\n", 1, ops.KIND_NO_SPACE),
        ("Fatal: something new\n", 11, ops.KIND_LOCKED),
        ("Fatal: something new\n", 12, ops.KIND_PASSWORD),
        ("Fatal: something new\n", 1, ops.KIND_OTHER),
    ],
)
def test_classify_restic_messages_kind(stderr: str, code: int, kind: str) -> None:
    assert ops.classify(stderr, code) == kind


def test_failure_line_stack_trace_gives_reason_not_frame() -> None:
    assert ops.failure_line(TREE_STDERR) == (
        "decrypting blob ad19354b failed: ciphertext verification failed"
    )


def test_parse_file_errors_one_per_file_and_failure_line_counts() -> None:
    stderr = (
        "ignoring error for /srv/a: ciphertext verification failed\n"
        "ignoring error for /srv/a: UtimesNano: no such file or directory\n"
        "ignoring error for /srv/b: StreamPack: open x: no such file or directory\n"
        "Fatal: There were 3 errors\n"
    )
    assert ops.parse_file_errors(stderr) == [
        ("/srv/a", "ciphertext verification failed"),
        ("/srv/b", "StreamPack: open x: no such file or directory"),
    ]
    assert ops.failure_line(stderr) == "/srv/a: ciphertext verification failed (2 files, 3 errors)"


def test_failure_line_lock_names_holder() -> None:
    line = ops.failure_line(LOCKED_STDERR)
    assert line.startswith("repository is locked exclusively by PID 4242 on web1 by backup")
    assert "1m0.5s ago" in line


def test_choose_snapshot_latest_skips_future_dated() -> None:
    snaps = [_snapshot("aaaa", NOW - timedelta(days=1)), _snapshot("bbbb", NOW + timedelta(days=3))]
    assert ops.choose_snapshot(snaps, "latest", NOW).short_id == "aaaa"


def test_choose_snapshot_future_id_refused() -> None:
    snaps = [_snapshot("bbbb", NOW + timedelta(minutes=6))]
    with pytest.raises(ops.ResticFailure, match="dated in the future"):
        ops.choose_snapshot(snaps, "bbbb", NOW)


def test_choose_snapshot_within_clock_skew_allowed() -> None:
    snaps = [_snapshot("bbbb", NOW + timedelta(minutes=4))]
    assert ops.choose_snapshot(snaps, "bbbb", NOW).short_id == "bbbb"


def test_choose_snapshot_random_uses_rng_and_empty_unknown() -> None:
    snaps = [_snapshot(c * 4, NOW - timedelta(hours=i)) for i, c in enumerate("abcdef")]
    picks = {ops.choose_snapshot(snaps, "random", NOW, random.Random(s)).short_id
             for s in range(30)}
    assert len(picks) > 1
    with pytest.raises(ops.ResticFailure) as error:
        ops.choose_snapshot([], "latest", NOW)
    assert error.value.kind == ops.KIND_NO_SNAPSHOT


def test_choose_snapshot_ambiguous_prefix_refused() -> None:
    snaps = [_snapshot("ab12", NOW), _snapshot("ab34", NOW)]
    with pytest.raises(ops.ResticFailure, match="ambiguous"):
        ops.choose_snapshot(snaps, "ab", NOW)


def test_escape_pattern_glob_characters_escaped() -> None:
    assert ops.escape_pattern("/srv/a[1]*?.txt") == r"/srv/a\[1\]\*\?.txt"


def test_rotating_subset_changes_daily_and_keeps_other_specs() -> None:
    day = ops.rotating_subset("1/7", NOW)
    next_day = ops.rotating_subset("1/7", NOW + timedelta(days=1))
    assert day != next_day and day.endswith("/7") and next_day.endswith("/7")
    assert ops.rotating_subset("10%", NOW) == "10%"


def test_lock_is_stale_old_or_dead_pid() -> None:
    old = ResticLock("l", NOW - timedelta(hours=1), True, "elsewhere", "u", 1)
    assert ops.lock_is_stale(old, NOW, "here")
    fresh_remote = ResticLock("l", NOW - timedelta(minutes=1), True, "elsewhere", "u", 1)
    assert not ops.lock_is_stale(fresh_remote, NOW, "here")
    dead = ResticLock("l", NOW - timedelta(minutes=1), True, "here", "u", 2**22 + 12345)
    assert ops.lock_is_stale(dead, NOW, "here")


def _node(path: bytes, kind: str, size: int = 0, **fields: object) -> Node:
    return Node(path, kind, size, None, None, None, None, **fields)  # type: ignore[arg-type]


def compare_tree(
    expected: list[Node], restored: dict[bytes, Entry], allow_extra_dirs: bool = False
) -> list[Mismatch]:
    """Compare nodes with restored entries {path: Entry}, folder by folder (exact folders)."""
    comparison = TreeComparison(allow_extra_dirs=allow_extra_dirs)
    listings: dict[bytes, dict[bytes, Entry]] = {}
    for path, entry in restored.items():
        folder, _, name = path.rpartition(b"/")
        listings.setdefault(folder, {})[name] = entry
    groups: dict[bytes, list[Node]] = {folder: [] for folder in listings}
    for node in expected:
        groups.setdefault(node.path.rpartition(b"/")[0], []).append(node)
    for folder, nodes in groups.items():
        comparison.folder(nodes, listings.get(folder), folder)
    return list(comparison.result().mismatches)


def test_compare_tree_missing_wrong_type_size_and_extra() -> None:
    nodes = [
        _node(b"/d", "dir"), _node(b"/d/a", "file", 3), _node(b"/d/b", "file", 3),
        _node(b"/d/l", "symlink"),
    ]
    restored = {
        b"/d": Entry("dir", 0), b"/d/a": Entry("file", 4), b"/d/l": Entry("file", 1),
        b"/d/extra": Entry("file", 1),
    }
    assert compare_tree(nodes, restored) == [
        Mismatch(b"/d/a", "size 4, expected 3"),
        Mismatch(b"/d/b", "missing (file expected)"),
        Mismatch(b"/d/extra", "not in the snapshot (file)"),
        Mismatch(b"/d/l", "is a file, expected a symlink"),
    ]


def test_compare_tree_sample_ignores_parent_dirs() -> None:
    nodes = [_node(b"/d/a", "file", 3)]
    restored = {b"/d": Entry("dir", 0), b"/d/a": Entry("file", 3)}
    assert compare_tree(nodes, restored, allow_extra_dirs=True) == []


def test_compare_tree_inexact_name_matches_raw_bytes_as_go_prints_them() -> None:
    listed = _node("/d/caf\ufffd".encode(), "file", 1, exact=False)
    restored = {b"/d/caf\xe9": Entry("file", 1)}
    assert compare_tree([listed], restored) == []
    assert compare_tree([listed], {b"/d/caf\xe8\x80": Entry("file", 1)}) == [
        Mismatch(b"/d/caf\xe8\x80", "not in the snapshot (file)"),
        Mismatch(listed.path, "missing (file expected)"),
    ]


def test_compare_tree_hard_links_apart_and_joined() -> None:
    one = _node(b"/a", "file", 1, inode=7, links=2, device=1)
    two = _node(b"/b", "file", 1, inode=7, links=2, device=1)
    alone = _node(b"/c", "file", 1, inode=8, links=1, device=1)
    apart = {b"/a": Entry("file", 1, inode=70), b"/b": Entry("file", 1, inode=71),
             b"/c": Entry("file", 1, inode=72)}
    assert [m.path for m in compare_tree([one, two, alone], apart)] == [b"/b"]
    joined = {b"/a": Entry("file", 1, inode=70), b"/b": Entry("file", 1, inode=70),
              b"/c": Entry("file", 1, inode=70)}
    problems = compare_tree([one, two, alone], joined)
    assert [(m.path, m.problem.split(",")[0]) for m in problems] == [
        (b"/c", "hard link of /a")
    ]


def test_mismatch_as_dict_raw_bytes_base64() -> None:
    assert Mismatch(b"/a\xff", "x").as_dict() == {
        "path": "/a\\xff", "path_b64": "L2H/", "problem": "x"
    }
    assert Mismatch(b"/caf\xc3\xa9", "x").as_dict() == {"path": "/caf\u00e9", "problem": "x"}


def test_coverage_of_not_root_over_budget_lists_reasons() -> None:
    coverage = coverage_of(trees=False, folders=90, budget=64, owner=False, xattrs=False,
                           inexact=0)
    assert coverage.verified == ("content", "size", "type", "names", "mode", "mtime")
    assert dict(coverage.not_verified)["owner"] == "not run as root"
    assert "90 folders" in dict(coverage.not_verified)["hard links"]


def _outcome(**changes: object) -> Outcome:
    base = Outcome(
        source="site", kind="restic", snapshot_id="abcdef0123", snapshot_time=NOW,
        files_expected=2, files_restored=2, bytes_restored=1000, files_verified=2,
        seconds=(("list", 1.0), ("restore", 2.0), ("verify", 0.5), ("cleanup", 0.1)),
        full_size_bytes=10_000, cleanup="removed",
    )
    return Outcome(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_evaluate_restore_clean_ok_with_projection() -> None:
    result = evaluate_restore(_outcome(), rto_target=3600)
    assert result.status is Status.OK
    assert result.data["bytes_per_second"] == 500
    assert result.data["projected_full_restore_seconds"] == 20
    assert result.data["seconds"]["total"] == 3.6
    assert "restored and verified" in result.summary


def test_evaluate_restore_slower_than_rto_warning() -> None:
    result = evaluate_restore(_outcome(), rto_target=10)
    assert result.status is Status.WARNING
    assert "exceeds the RTO target" in result.summary


def test_evaluate_restore_mismatch_critical_beats_rto_warning() -> None:
    result = evaluate_restore(_outcome(mismatches=(Mismatch(b"/a", "size 1, expected 2"),)), 10)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith("snapshot abcdef01: 1 mismatch: /a size 1, expected 2")
    assert result.data["mismatches"] == [{"path": "/a", "problem": "size 1, expected 2"}]


def test_evaluate_restore_failure_unknown_and_cleanup_failure_warning() -> None:
    failed = evaluate_restore(
        _outcome(failure="wrong password", failure_status=Status.UNKNOWN), None
    )
    assert failed.status is Status.UNKNOWN
    left = evaluate_restore(_outcome(cleanup="failed: /s: busy"), None)
    assert left.status is Status.WARNING
    assert "scratch folder left behind" in left.summary


def test_expected_checksum_order_sha256_sidecar_etag() -> None:
    body = b"hello"
    sha = hashlib.sha256(body)
    head = {"ChecksumSHA256": base64.b64encode(sha.digest()).decode(),
            "ETag": '"' + hashlib.md5(body).hexdigest() + '"'}
    assert expected_checksum(head, None).origin == "the object's SHA-256 checksum"  # type: ignore[union-attr]
    composite = {**head, "ChecksumSHA256": head["ChecksumSHA256"] + "-2"}
    sidecar = expected_checksum(composite, f"{sha.hexdigest()}  x\n")
    assert sidecar is not None and sidecar.origin == "the .sha256 sidecar manifest"
    etag = expected_checksum({"ETag": head["ETag"]}, "garbage")
    assert etag is not None and etag.kind == "md5"
    assert expected_checksum({"ETag": '"abc-3"'}, None) is None


def test_parse_manifest_sha256sum_formats() -> None:
    digest = "a" * 64
    assert parse_manifest(f"{digest}  ./x/y\n{digest} *bin\nnoise\n") == {"x/y": digest, "bin": digest}


def test_choose_object_and_full_restore_bytes() -> None:
    objects = [
        S3Object("b/db/1.sql", 10, NOW - timedelta(days=2), "e"),
        S3Object("b/db/2.sql", 20, NOW - timedelta(days=1), "e"),
        S3Object("b/www/1.tar", 5, NOW - timedelta(days=3), "e"),
        S3Object("b/db/3.sql", 30, NOW + timedelta(days=1), "e"),
    ]
    assert choose_object(objects, "latest", "b/", NOW, random.Random(1)).key == "b/db/2.sql"
    assert choose_object(objects, "www/1.tar", "b/", NOW, random.Random(1)).key == "b/www/1.tar"
    assert full_restore_bytes(objects[:3], "b/") == 25


def test_classify_unreachable_backend_not_missing_repository() -> None:
    stderr = (
        'Fatal: unable to open config file: Stat: Get "http://127.0.0.1:9/b/?location=": '
        "dial tcp 127.0.0.1:9: connect: connection refused\n"
        "Is there a repository at the following location?\n"
    )
    assert ops.classify(stderr, 1) == ops.KIND_UNREACHABLE


def test_evaluate_restore_empty_snapshot_warning_not_ok() -> None:
    result = evaluate_restore(
        _outcome(files_expected=0, files_restored=0, files_verified=0, bytes_restored=0), None
    )
    assert result.status is Status.WARNING
    assert "holds no files" in result.summary


def test_evaluate_restore_not_verified_in_summary_and_data() -> None:
    result = evaluate_restore(
        _outcome(verified=("content",), not_verified=(("owner", "not run as root"),)), None
    )
    assert result.status is Status.OK
    assert result.summary.endswith("; not verified: owner")
    assert result.data["not_verified"] == ["owner"]
    assert result.data["not_verified_reasons"] == {"owner": "not run as root"}
    assert "not verified: owner (not run as root)" in result.details


def test_restore_begun_early_counts_its_whole_run_and_the_total_stays_wall_time() -> None:
    timer = PhaseTimer()
    timer.seconds.update(list=2.0, restore=0.5)  # 0.5 s waited for a restore of 3 s
    timer.ran_for("restore", 3.0)
    assert timer.seconds["restore"] == 3.0
    assert timer.total() == 2.5
    outcome = Outcome(
        source="s", kind="restic", files_expected=1, files_restored=1, files_verified=1,
        bytes_restored=3_000_000, full_size_bytes=3_000_000,
        seconds=tuple(timer.seconds.items()), overlap_seconds=timer.overlap,
        verified=("content",),
    )
    data = evaluate_restore(outcome, None).data
    assert data["seconds"]["total"] == 2.5
    assert data["bytes_per_second"] == 1_000_000.0  # over the restore's 3 s, not 0.5 s
    assert data["projected_full_restore_seconds"] == 3.0

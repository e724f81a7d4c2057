"""The comparison a folder at a time: spools, listing groups, the mismatch bound."""

from __future__ import annotations

import contextlib
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from durability.errors import ParseError
from durability.model import Status
from durability.resticlocal import Damaged, JsonPieces
from durability.resticls import Node
from durability.restore.expected import ListingGroups, Spool, disagreement, sample_groups
from durability.restore.outcome import Outcome, evaluate_restore
from durability.restore.scratch import ScratchError
from durability.restore.verify import (
    Entry,
    LiveComparer,
    Mismatch,
    TreeComparison,
    compare_groups,
)
from tests.restore.conftest import Repo, mounted_tmpfs


def _node(path: bytes, kind: str = "file", size: int = 1, **fields: object) -> Node:
    return Node(path, kind, size, None, None, None, None, **fields)  # type: ignore[arg-type]


# restic ls prints a folder, then what it holds (depth first), before the folder's
# next sibling.
LISTED = [
    _node(b"/a", "dir", 0), _node(b"/a/x", "dir", 0), _node(b"/a/x/1", size=5),
    _node(b"/a/x/2", size=7), _node(b"/a/y", size=3), _node(b"/b", size=11),
    _node(b"/c", "dir", 0),
]


def _problems(comparison: TreeComparison) -> list[tuple[bytes, str]]:
    return [(m.path, m.problem) for m in comparison.result().mismatches]


def _groups(spool: Spool) -> dict[bytes, list[bytes]]:
    return {folder: [node.path for node in nodes] for folder, nodes in spool.groups()}


def test_listing_groups_gather_each_folders_children_and_count(tmp_path: Path) -> None:
    with Spool(str(tmp_path)) as spool:
        grouper = ListingGroups(spool)
        for node in LISTED:
            grouper.feed(node)
        grouper.finish()
        assert _groups(spool) == {
            b"/a/x": [b"/a/x/1", b"/a/x/2"],
            b"/a": [b"/a/x", b"/a/y"],
            b"/c": [],
            b"": [b"/a", b"/b", b"/c"],
        }
        assert (spool.entries, spool.files, spool.bytes, spool.folders) == (7, 4, 26, 4)
        # Read twice: the same groups (the spool is a file, read from its start).
        assert len(_groups(spool)) == 4


def test_listing_node_outside_its_folder_is_a_parse_error(tmp_path: Path) -> None:
    with Spool(str(tmp_path)) as spool:
        grouper = ListingGroups(spool)
        grouper.feed(_node(b"/a", "dir", 0))
        with pytest.raises(ParseError, match="outside its folder"):
            grouper.feed(_node(b"/q/z"))


def test_spool_leaves_no_file_behind(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path))
    spool.add(b"", [_node(b"/f")])
    assert os.listdir(tmp_path) == []  # unnamed from the start
    spool.close()


def test_spool_sample_is_uniform_and_bounded(tmp_path: Path) -> None:
    counts = dict.fromkeys(range(20), 0)
    for seed in range(400):
        with Spool(str(tmp_path), sample=3, rng=random.Random(seed)) as spool:
            spool.add(b"", [_node(f"/f{n}".encode()) for n in range(20)])
            assert len(spool.sample) == 3
            assert len({node.path for node in spool.sample}) == 3
            for node in spool.sample:
                counts[int(node.path[2:])] += 1
    # 1,200 picks over 20 files: 60 each on average; none far off (no bias to the ends).
    assert min(counts.values()) > 30 and max(counts.values()) < 95


def test_disagreement_names_the_first_folder_that_differs(tmp_path: Path) -> None:
    key = os.urandom(32)
    with Spool(str(tmp_path), digest=True, digests=8, key=key) as listing, \
            Spool(str(tmp_path), digest=True, digests=8, key=key) as trees:
        # The listing shows a byte that is not UTF-8 as U+FFFD; the tree keeps it raw.
        listing.add(b"/d", [_node("/d/caf\ufffd".encode(), exact=False), _node(b"/d/z")])
        listing.add(b"", [_node(b"/d", "dir", 0)])
        trees.add(b"", [_node(b"/d", "dir", 0)])
        trees.add(b"/d", [_node(b"/d/caf\xe9"), _node(b"/d/z")])
        assert disagreement(listing, trees) is None
        trees.add(b"/e", [_node(b"/e/extra")])
        assert disagreement(listing, trees) == (
            "the snapshot's listing (3 entries) and its trees (4) disagree, first in folder /e"
        )
    with Spool(str(tmp_path), digest=True, key=key) as one, \
            Spool(str(tmp_path), digest=True, key=key) as two:
        one.add(b"", [_node(b"/f", size=1)])
        two.add(b"", [_node(b"/f", size=2)])  # same count, other size
        assert disagreement(one, two) == (
            "the snapshot's listing (1 entries) and its trees (1) disagree"
        )


def test_sample_groups_include_every_folder_above() -> None:
    groups = dict(sample_groups([_node(b"/a/b/f"), _node(b"/g")]))
    assert groups == {b"": [_node(b"/g")], b"/a": [], b"/a/b": [_node(b"/a/b/f")]}


def test_tree_comparison_lists_a_bounded_number_and_counts_the_rest() -> None:
    comparison = TreeComparison(limit=3)
    nodes = [_node(f"/f{n:02d}".encode()) for n in range(10)]
    comparison.folder(nodes[5:], {}, b"")
    comparison.folder(nodes[:5], {}, b"")  # found later, listed first: by path
    result = comparison.result()
    assert [m.path for m in result.mismatches] == [b"/f00", b"/f01", b"/f02"]
    assert result.more == 7
    outcome = Outcome(source="s", kind="restic", files_expected=10,
                      mismatches=result.mismatches, mismatches_more=result.more)
    verdict = evaluate_restore(outcome, None)
    assert verdict.status is Status.CRITICAL
    assert verdict.summary.startswith("10 mismatches: /f00 missing")
    assert verdict.data["mismatches_total"] == 10 and len(verdict.data["mismatches"]) == 3


def test_hard_links_matched_across_folders() -> None:
    one = _node(b"/a/one", inode=7, links=2, device=1)
    two = _node(b"/b/two", inode=7, links=2, device=1)
    alone = _node(b"/b/alone", inode=8, links=1, device=1)
    apart = TreeComparison()
    apart.folder([one], {b"one": Entry("file", 1, inode=70, links=1)}, b"/a")
    apart.folder([two, alone], {b"two": Entry("file", 1, inode=71, links=1),
                                b"alone": Entry("file", 1, inode=72, links=1)}, b"/b")
    assert [(m.path, m.problem) for m in apart.result().mismatches] == [
        (b"/b/two", "not a hard link of /a/one as in the snapshot")
    ]
    joined = TreeComparison()
    joined.folder([one], {b"one": Entry("file", 1, inode=70, links=3)}, b"/a")
    joined.folder([two, alone], {b"two": Entry("file", 1, inode=70, links=3),
                                 b"alone": Entry("file", 1, inode=70, links=3)}, b"/b")
    assert [(m.path, m.problem) for m in joined.result().mismatches] == [
        (b"/b/alone", "hard link of /a/one, separate files in the snapshot")
    ]


def _tree(root: Path) -> None:
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "f").write_bytes(b"12")
    (root / "d" / "sub" / "g").write_bytes(b"123")
    os.mkdir(os.fsencode(root / "d") + b"/raw\xff")
    (Path(os.fsdecode(os.fsencode(root / "d") + b"/raw\xff")) / "h").write_bytes(b"1")


def test_compare_groups_reads_each_folder_from_disk(tmp_path: Path) -> None:
    _tree(tmp_path)
    listed = "/d/raw\ufffd".encode()
    groups = [
        (b"", [_node(b"/d", "dir", 0)]),
        (b"/d", [_node(b"/d/f", size=2), _node(b"/d/sub", "dir", 0),
                 _node(listed, "dir", 0, exact=False)]),
        (b"/d/sub", [_node(b"/d/sub/g", size=4)]),
        # Listed with U+FFFD: found among the restored names Go prints the same way.
        (listed, [_node(listed + b"/h", exact=False)]),
    ]
    comparison = TreeComparison()
    compare_groups(groups, str(tmp_path), comparison)
    result = comparison.result()
    assert _problems(comparison) == [(b"/d/sub/g", "size 3, expected 4")]
    assert (result.files_restored, result.files_verified, result.bytes_restored) == (3, 2, 3)


def test_compare_groups_folder_missing_or_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "d").write_bytes(b"")
    comparison = TreeComparison()
    compare_groups([(b"", [_node(b"/d", "dir", 0)]), (b"/d", [_node(b"/d/f")]),
                    (b"/e", [_node(b"/e/f")])], str(tmp_path), comparison)
    assert _problems(comparison) == [
        (b"/d", "is a file, expected a dir"),
        (b"/d/f", "missing (file expected)"),
        (b"/e/f", "missing (file expected)"),
    ]


def test_live_comparer_bounded_queue_finds_every_difference(tmp_path: Path) -> None:
    live, restored = tmp_path / "live", tmp_path / "restored"
    live.mkdir()
    restored.mkdir()
    nodes = []
    for number in range(600):  # more than the comparisons allowed to wait at once
        name = f"f{number}"
        (restored / name).write_bytes(b"x" * 10)
        (live / name).write_bytes(b"y" * 10 if number % 100 == 0 else b"x" * 10)
        mtime = (live / name).stat().st_mtime_ns
        nodes.append(Node(f"/{name}".encode(), "file", 10, None, mtime, None, None))
    found: list[Mismatch] = []
    comparer = LiveComparer(str(live), str(restored), found.append, workers=4)
    try:
        for node in nodes:
            comparer.offer(node, node.path)
        result = comparer.finish()
    finally:
        comparer.close()
    assert (result.compared, result.identical) == (600, 594)
    assert sorted(m.path for m in found) == sorted(f"/f{n}".encode() for n in range(0, 600, 100))


def test_spool_on_a_full_scratch_disk_is_a_clear_scratch_error(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "tiny", "size=64k") as tiny:
        (tiny / "filler").write_bytes(b"")
        with open(tiny / "filler", "ab", buffering=0) as filler, \
                contextlib.suppress(OSError):
            while True:  # fill it to the last byte
                filler.write(b"x" * 4096)
        spool = None
        with pytest.raises(ScratchError, match=r"^scratch disk full: .* no space left on device$"):
            spool = Spool(str(tiny))
            for number in range(1000):
                spool.add(b"", [_node(f"/folder/file{number:06d}".encode())] * 50)
            list(spool.groups())
        if spool is not None:
            spool.close()


def _pieces(text: str, size: int) -> Iterator[str]:
    return iter([text[start:start + size] for start in range(0, len(text), size)])


@pytest.mark.parametrize("size", [1, 2, 7, 1000])
def test_index_parsed_a_pack_at_a_time_from_any_pieces(size: int) -> None:
    index = {
        "supersedes": ["ab" * 32],
        "packs": [
            {"id": "cd" * 32, "blobs": [{"id": "ef" * 32, "type": "tree", "offset": 12345,
                                         "length": 678, "uncompressed_length": 9012}]},
            {"id": "01" * 32, "blobs": []},
        ],
    }
    text = json.dumps(index, indent=1)
    packs = list(JsonPieces(_pieces(text, size), "index/x").members("packs"))
    assert packs == index["packs"]  # numbers cut between pieces are read whole
    floats = '{"z": 1.5e3, "packs": [-2.25, 10]}'
    assert list(JsonPieces(_pieces(floats, size), "i").members("packs")) == [-2.25, 10]


@pytest.mark.parametrize("text, problem", [
    ('{"packs": [{"id": "a"}', "not JSON"),  # cut short
    ('{"packs": [{"id": "a"}]} {}', "text after the object"),
    ('{"supersedes": []}', "no 'packs' member"),
    ('["packs"]', "expected '{'"),
])
def test_index_that_is_not_one_json_object_is_damaged(text: str, problem: str) -> None:
    with pytest.raises(Damaged, match=problem):
        list(JsonPieces(_pieces(text, 3), "index/x").members("packs"))


def _raw(root: Path, *parts: bytes) -> bytes:
    return os.fsencode(root) + b"".join(b"/" + part for part in parts)


LOSSY = "/\ufffd".encode()


def test_folders_that_print_alike_each_compared_once(tmp_path: Path) -> None:
    """Two folders listed as one name: each listed folder takes a different restored one."""
    for name in (b"\xfe", b"\xff"):
        os.mkdir(_raw(tmp_path, name))
    with open(_raw(tmp_path, b"\xfe", b"f"), "wb") as handle:
        handle.write(b"1")
    # /\xff/f did not come back.
    listed = [_node(LOSSY, "dir", 0, exact=False), _node(LOSSY, "dir", 0, exact=False)]
    inner = [_node(LOSSY + b"/f", exact=False)]
    comparison = TreeComparison()
    compare_groups([(LOSSY, inner), (LOSSY, inner), (b"", listed)], str(tmp_path), comparison)
    result = comparison.result()
    assert _problems(comparison) == [
        (LOSSY + b"/f", "missing (file expected)")
    ]
    assert (result.files_restored, result.files_verified) == (1, 1)


def test_sample_extra_file_in_a_folder_no_sampled_file_names(tmp_path: Path) -> None:
    for folder, name in (("a", "f"), ("b", "g")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_bytes(b"1")
    os.symlink("/etc", tmp_path / "b" / "link")
    comparison = TreeComparison(allow_extra_dirs=True)
    compare_groups(sample_groups([_node(b"/a/f")]), str(tmp_path), comparison, sample=True)
    assert _problems(comparison) == [
        (b"/b/g", "not in the snapshot (file)"),
        (b"/b/link", "not in the snapshot (symlink)"),
    ]


def test_folder_restored_as_a_symlink_is_not_followed(tmp_path: Path) -> None:
    outside, tree = tmp_path / "outside", tmp_path / "tree"
    outside.mkdir()
    tree.mkdir()
    (outside / "f").write_bytes(b"1")
    os.symlink(outside, tree / "a")
    seen: list[bytes] = []
    comparison = TreeComparison(on_verified=lambda node, path: seen.append(path))
    compare_groups([(b"", [_node(b"/a", "dir", 0)]), (b"/a", [_node(b"/a/f")])], str(tree),
                   comparison)
    result = comparison.result()
    assert _problems(comparison) == [
        (b"/a", "is a symlink, expected a dir"), (b"/a/f", "missing (file expected)"),
    ]
    assert (result.files_verified, seen) == (0, [])


def test_listing_into_a_full_scratch_disk_is_scratch_full_not_damage(
    small_repo: Repo, tmp_path: Path
) -> None:
    from durability.restic import Restic
    from durability.restore import reference

    restic = Restic(str(small_repo.path), str(small_repo.password_file), no_cache=True)
    snapshot = json.loads(small_repo.restic("snapshots", "--json"))[-1]["id"]
    with mounted_tmpfs(tmp_path / "tiny", "size=64k") as tiny:
        spool = Spool(str(tiny))
        with open(tiny / "filler", "ab", buffering=0) as filler, \
                contextlib.suppress(OSError):
            while True:
                filler.write(b"x" * 4096)
        try:
            with pytest.raises(ScratchError, match=r"^scratch disk full: "):
                reference.list_nodes(restic, snapshot, spool)
        finally:
            spool.close()


def test_spool_that_cannot_be_read_back_is_a_scratch_error(tmp_path: Path) -> None:
    with Spool(str(tmp_path)) as spool:
        spool.add(b"", [_node(b"/f")])
        spool._file.flush()
        os.pwrite(spool._file.fileno(), b"\x00" * 8, 0)  # the disk gave back other bytes
        with pytest.raises(ScratchError, match="cannot be read back"):
            list(spool.groups())

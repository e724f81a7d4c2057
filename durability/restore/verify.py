"""Verification of a restored tree: structure against the snapshot, content by hash.

`compare_tree` is pure (expected nodes and the walked tree in, mismatches out);
`walk_tree` and `hash_files` do the I/O. Hashing reads each file once with a large
buffer; several files are hashed at once because hashlib releases the GIL.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from durability.restore.resticops import Node

CHUNK = 1 << 20

# restic node types and the lstat test for each.
_TYPES: dict[str, Callable[[int], bool]] = {
    "file": stat.S_ISREG,
    "dir": stat.S_ISDIR,
    "symlink": stat.S_ISLNK,
    "fifo": stat.S_ISFIFO,
    "socket": stat.S_ISSOCK,
    "dev": stat.S_ISBLK,
    "chardev": stat.S_ISCHR,
}


@dataclass(frozen=True)
class Entry:
    """One restored entry: its type (restic's names) and size."""

    type: str
    size: int


@dataclass(frozen=True)
class Mismatch:
    """One thing wrong with what came back."""

    path: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        """Return the JSON form."""
        return {"path": self.path, "problem": self.problem}


@dataclass(frozen=True)
class Hashed:
    """The hash of one file, or why it could not be read."""

    path: str
    sha256: str | None
    size: int
    error: str | None = None


def entry_type(mode: int) -> str:
    """Given an lstat mode, return restic's node type name."""
    for name, test in _TYPES.items():
        if test(mode):
            return name
    return "other"


def walk_tree(root: str) -> dict[str, Entry]:
    """Given a restored folder, return {"/absolute/path/in/snapshot": Entry}."""
    entries: dict[str, Entry] = {}
    if not os.path.isdir(root):
        return entries
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            full = os.path.join(folder, name)
            info = os.lstat(full)
            kind = entry_type(info.st_mode)
            relative = "/" + os.path.relpath(full, root)
            entries[relative] = Entry(kind, info.st_size if kind == "file" else 0)
    return entries


def compare_tree(
    expected: Sequence[Node], restored: Mapping[str, Entry], allow_extra_dirs: bool = False
) -> list[Mismatch]:
    """Given the snapshot's nodes and the restored entries, return what differs.

    Missing entries, wrong types and wrong file sizes are mismatches; so are entries
    the snapshot does not hold (except folders, when only a sample was restored).
    """
    mismatches: list[Mismatch] = []
    wanted = {node.path: node for node in expected}
    for path, node in wanted.items():
        got = restored.get(path)
        if got is None:
            mismatches.append(Mismatch(path, f"missing ({node.type} expected)"))
        elif got.type != node.type:
            mismatches.append(Mismatch(path, f"is a {got.type}, expected a {node.type}"))
        elif node.type == "file" and got.size != node.size:
            mismatches.append(Mismatch(path, f"size {got.size}, expected {node.size}"))
    for path, got in restored.items():
        if path in wanted:
            continue
        if allow_extra_dirs and got.type == "dir":
            continue
        mismatches.append(Mismatch(path, f"not in the snapshot ({got.type})"))
    return sorted(mismatches, key=lambda m: m.path)


class Cancelled(Exception):
    """Hashing was stopped from outside (the test is being abandoned)."""


def hash_file(path: str, chunk: int = CHUNK, cancel: threading.Event | None = None) -> str:
    """Given a file, return its SHA-256 hex digest.

    Raise OSError if unreadable, Cancelled if `cancel` is set meanwhile.
    """
    digest = hashlib.sha256()
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled(path)
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
    return digest.hexdigest()


def _hash_one(path: str, cancel: threading.Event | None = None) -> Hashed:
    try:
        size = os.path.getsize(path)
        return Hashed(path, hash_file(path, cancel=cancel), size)
    except OSError as error:
        return Hashed(path, None, 0, error.strerror or str(error))
    except Cancelled:
        return Hashed(path, None, 0, "not hashed: the test was stopped")


def hash_files(
    paths: Iterable[str],
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[Hashed]:
    """Given file paths, return their hashes (in the same order), reading them in parallel.

    `workers` 0 means one per CPU (at most 8). `progress` is called with each file's size.
    Setting `cancel` makes the remaining files come back unhashed, at once.
    """
    items = list(paths)
    count = workers or min(8, os.cpu_count() or 1)
    if count <= 1 or len(items) <= 1:
        results = []
        for path in items:
            hashed = _hash_one(path, cancel)
            if progress:
                progress(hashed.size)
            results.append(hashed)
        return results
    with ThreadPoolExecutor(max_workers=count) as pool:
        results = []
        for hashed in pool.map(lambda path: _hash_one(path, cancel), items):
            if progress:
                progress(hashed.size)
            results.append(hashed)
        return results


@dataclass(frozen=True)
class LiveComparison:
    """How restored files compare with the live files on this host."""

    compared: int
    identical: int
    changed_since: tuple[str, ...]
    mismatches: tuple[Mismatch, ...]


@dataclass(frozen=True)
class LiveFiles:
    """Live files of this host that match the snapshot's size and mtime, and those that don't."""

    unchanged: tuple[tuple[Node, str], ...]
    changed: tuple[str, ...]


def find_live_files(nodes: Sequence[Node], live_root: str = "/") -> LiveFiles:
    """Given snapshot nodes, return which exist on this host unchanged (size and mtime).

    Files absent on this host, or not regular files there, are in neither list.
    """
    unchanged: list[tuple[Node, str]] = []
    changed: list[str] = []
    for node in nodes:
        if node.type != "file":
            continue
        live = os.path.join(live_root, node.path.lstrip("/"))
        try:
            info = os.lstat(live)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        same = info.st_size == node.size and (
            node.mtime is not None and abs(info.st_mtime - node.mtime.timestamp()) < 0.001
        )
        if same:
            unchanged.append((node, live))
        else:
            changed.append(node.path)
    return LiveFiles(tuple(unchanged), tuple(changed))


def judge_live(
    live: LiveFiles, live_hashes: Sequence[Hashed], restored_hashes: Mapping[str, str]
) -> LiveComparison:
    """Given unchanged live files, their hashes and the restored hashes, compare them.

    A live file with the snapshot's size and mtime but other content is a mismatch.
    """
    compared = identical = 0
    mismatches: list[Mismatch] = []
    for (node, _path), item in zip(live.unchanged, live_hashes, strict=True):
        restored = restored_hashes.get(node.path)
        if item.sha256 is None or restored is None:
            continue
        compared += 1
        if item.sha256 == restored:
            identical += 1
        else:
            mismatches.append(
                Mismatch(node.path, "content differs from the live file of same size and mtime")
            )
    changed = tuple(p for p in live.changed if p in restored_hashes)
    return LiveComparison(compared, identical, changed, tuple(mismatches))


def compare_live(
    nodes: Sequence[Node], restored_hashes: Mapping[str, str], live_root: str = "/"
) -> LiveComparison:
    """Given snapshot file nodes and the restored files' hashes, compare with live files.

    A live file with the snapshot's size and mtime but other content is a mismatch; a
    live file whose size or mtime differ changed since the snapshot and is listed
    apart. Files absent on this host are not compared.
    """
    wanted = [node for node in nodes if node.path in restored_hashes]
    live = find_live_files(wanted, live_root)
    hashed = hash_files(path for _node, path in live.unchanged)
    return judge_live(live, hashed, restored_hashes)

"""Verification of a restored tree against the snapshot, and against the live files.

`compare_tree` is pure apart from extended attributes (expected nodes and the walked
tree in, mismatches out); `walk_tree` reads the restored tree as bytes. The content of
restored files is checked by `restic restore --verify` against the snapshot's blob
hashes; `compare_live` compares restored files with live files of the same size and
mtime byte for byte, several at a time (reads release the GIL). `hash_files` hashes
files (S3 objects, archive members).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from durability.resticls import Node, display, go_lossy, path_fields

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

# The properties a restore test can compare, in the order results list them.
PROPERTIES = (
    "content", "size", "type", "names", "mode", "mtime", "symlink target", "hard links",
    "owner", "xattrs",
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One restored entry as lstat sees it (type in restic's names)."""

    type: str
    size: int
    mode: int = 0
    mtime_ns: int = 0
    uid: int = 0
    gid: int = 0
    inode: int = 0
    linktarget: bytes | None = None


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One thing wrong with what came back; `path` is bytes (names are not text)."""

    path: bytes
    problem: str

    def as_dict(self) -> dict[str, str]:
        """Return the JSON form: `path` readable, `path_b64` when it is not UTF-8."""
        return {**path_fields(self.path), "problem": self.problem}

    @property
    def shown(self) -> str:
        """Return the path for people (bytes that are not UTF-8 as \\xNN)."""
        return display(self.path)


@dataclass(frozen=True)
class Hashed:
    """The hash of one file, or why it could not be read."""

    path: str | bytes
    sha256: str | None
    size: int
    error: str | None = None


@dataclass(frozen=True)
class Coverage:
    """Which properties were compared, and why each of the others was not."""

    verified: tuple[str, ...]
    not_verified: tuple[tuple[str, str], ...]


def coverage_of(
    *, trees: bool, folders: int, budget: int, owner: bool, xattrs: bool, inexact: int
) -> Coverage:
    """Given what the comparison could use, return which properties it verified.

    `trees`: the snapshot's trees were read (else `folders` exceeded `budget`);
    `owner`: run as root; `xattrs`: the scratch filesystem keeps extended attributes;
    `inexact`: names listed with replaced bytes.
    """
    verified = ["content", "size", "type", "mode", "mtime"]
    missing: list[tuple[str, str]] = []
    beyond = f"the snapshot has {folders} folders, more than the {budget} whose trees are read"
    if trees or not inexact:
        verified.insert(3, "names")
    else:
        missing.append(
            ("names", f"{inexact} name(s) not UTF-8 compared as restic lists them; {beyond}")
        )
    for name in ("symlink target", "hard links"):
        if trees:
            verified.append(name)
        else:
            missing.append((name, beyond))
    if owner:
        verified.append("owner")
    else:
        missing.append(("owner", "not run as root"))
    if trees and xattrs:
        verified.append("xattrs")
    elif not trees:
        missing.append(("xattrs", beyond))
    else:
        missing.append(("xattrs", "the scratch filesystem keeps no extended attributes"))
    order = {name: index for index, name in enumerate(PROPERTIES)}
    return Coverage(
        tuple(sorted(verified, key=order.__getitem__)),
        tuple(sorted(missing, key=lambda item: order[item[0]])),
    )


def keeps_xattrs(folder: str | bytes) -> bool:
    """Given a writable folder, return True if its filesystem keeps user extended attributes.

    A probe file is written there, given an attribute, and removed.
    """
    probe = os.path.join(os.fsencode(folder), b".xattr-probe")
    try:
        with open(probe, "wb"):
            pass
        os.setxattr(probe, "user.durability", b"1")
        return os.getxattr(probe, "user.durability") == b"1"
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)


def entry_type(mode: int) -> str:
    """Given an lstat mode, return restic's node type name."""
    for name, test in _TYPES.items():
        if test(mode):
            return name
    return "other"


def _entry(full: bytes) -> Entry:
    info = os.lstat(full)
    kind = entry_type(info.st_mode)
    return Entry(
        type=kind,
        size=info.st_size if kind == "file" else 0,
        mode=stat.S_IMODE(info.st_mode),
        mtime_ns=info.st_mtime_ns,
        uid=info.st_uid,
        gid=info.st_gid,
        inode=info.st_ino,
        linktarget=os.readlink(full) if kind == "symlink" else None,
    )


def walk_tree(root: str | bytes) -> dict[bytes, Entry]:
    """Given a restored folder, return {b"/absolute/path/in/snapshot": Entry}.

    Names are read as bytes, exactly as the filesystem holds them.
    """
    base = os.fsencode(root)
    entries: dict[bytes, Entry] = {}
    if not os.path.isdir(base):
        return entries
    cut = len(base.rstrip(b"/"))
    for folder, dirs, files in os.walk(base):
        for name in (*dirs, *files):
            full = os.path.join(folder, name)
            entries[full[cut:]] = _entry(full)
    return entries


def match_restored(
    expected: Sequence[Node], restored: Mapping[bytes, Entry]
) -> tuple[list[tuple[Node, bytes]], list[Node], list[bytes]]:
    """Given the snapshot's nodes and the restored entries, pair them by path.

    A node listed with replaced bytes (`exact` False) is paired with a restored name
    that Go's listing would print the same way. Return (pairs, missing nodes, restored
    paths the snapshot does not hold).
    """
    pairs: list[tuple[Node, bytes]] = []
    missing: list[Node] = []
    claimed: set[bytes] = set()
    inexact: list[Node] = []
    for node in expected:
        if node.exact and node.path in restored:
            pairs.append((node, node.path))
            claimed.add(node.path)
        elif node.exact:
            missing.append(node)
        else:
            inexact.append(node)
    if inexact:
        lossy: dict[bytes, list[bytes]] = {}
        for path in restored:
            if path not in claimed:
                lossy.setdefault(go_lossy(path).encode("utf-8"), []).append(path)
        for node in inexact:
            candidates = lossy.get(node.path)
            if candidates:
                path = candidates.pop(0)
                pairs.append((node, path))
                claimed.add(path)
            else:
                missing.append(node)
    extra = [path for path in restored if path not in claimed]
    return pairs, missing, extra


def _xattrs(path: bytes) -> dict[bytes, bytes]:
    names = os.listxattr(path, follow_symlinks=False)
    return {
        os.fsencode(name): os.getxattr(path, name, follow_symlinks=False) for name in names
    }


def compare_tree(
    expected: Sequence[Node],
    restored: Mapping[bytes, Entry],
    allow_extra_dirs: bool = False,
    owner: bool = False,
    root: str | bytes | None = None,
    matched: tuple[list[tuple[Node, bytes]], list[Node], list[bytes]] | None = None,
) -> list[Mismatch]:
    """Given the snapshot's nodes and the restored entries, return what differs.

    Missing entries, wrong types, file sizes, permission bits (setuid, setgid, sticky
    included), mtimes and symlink targets are mismatches; so are entries the snapshot
    does not hold (except folders, when only a sample was restored), hard links the
    snapshot holds that came back apart (or the reverse), owners (with `owner`, when run
    as root) and extended attributes (when the nodes carry them and `root`, the restored
    folder, is given). A property a node does not carry (None) is not compared.
    `matched` is `match_restored` of the same, when the caller has it already.
    """
    mismatches: list[Mismatch] = []
    pairs, missing, extra = matched or match_restored(expected, restored)
    mismatches.extend(Mismatch(node.path, f"missing ({node.type} expected)") for node in missing)
    base = os.fsencode(root).rstrip(b"/") if root is not None else None
    groups: dict[tuple[int | None, int], list[bytes]] = {}
    for node, path in pairs:
        got = restored[path]
        if got.type != node.type:
            mismatches.append(Mismatch(path, f"is a {got.type}, expected a {node.type}"))
            continue
        problems = _node_problems(node, got, owner)
        if base is not None and node.xattrs is not None and node.type != "symlink":
            problems.extend(_xattr_problems(node, base + path))
        mismatches.extend(Mismatch(path, problem) for problem in problems)
        if node.type == "file" and node.links is not None and node.inode is not None:
            key = (node.device, node.inode) if node.links > 1 else (None, -len(groups) - 1)
            groups.setdefault(key, []).append(path)
    mismatches.extend(_hard_link_problems(groups, restored))
    for path in extra:
        got = restored[path]
        if allow_extra_dirs and got.type == "dir":
            continue
        mismatches.append(Mismatch(path, f"not in the snapshot ({got.type})"))
    return sorted(mismatches, key=lambda m: m.path)


def _node_problems(node: Node, got: Entry, owner: bool) -> list[str]:
    problems: list[str] = []
    if node.type == "file" and got.size != node.size:
        problems.append(f"size {got.size}, expected {node.size}")
    if node.mode is not None and node.type != "symlink" and got.mode != node.mode:
        problems.append(f"mode {got.mode:04o}, expected {node.mode:04o}")
    if node.mtime_ns is not None and got.mtime_ns != node.mtime_ns:
        problems.append(f"mtime {_time(got.mtime_ns)}, expected {_time(node.mtime_ns)}")
    if node.type == "symlink" and node.linktarget is not None and got.linktarget != node.linktarget:
        problems.append(
            f"symlink to {display(got.linktarget or b'')}, expected {display(node.linktarget)}"
        )
    if owner and node.uid is not None and node.gid is not None and (
        (got.uid, got.gid) != (node.uid, node.gid)
    ):
        problems.append(f"owner {got.uid}:{got.gid}, expected {node.uid}:{node.gid}")
    return problems


def _xattr_problems(node: Node, full: bytes) -> list[str]:
    try:
        present = _xattrs(full)
    except OSError as error:
        return [f"extended attributes unreadable: {error.strerror or error}"]
    problems: list[str] = []
    wanted = {x.name: x.value for x in node.xattrs or ()}
    for name, value in wanted.items():
        if name not in present:
            problems.append(f"extended attribute {display(name)} missing")
        elif present[name] != value:
            problems.append(f"extended attribute {display(name)} differs")
    for name in present:
        # The system may label restored files itself (SELinux, capabilities set by
        # policy); an extra attribute of the user namespace is the restore's doing.
        if name not in wanted and name.startswith(b"user."):
            problems.append(f"extended attribute {display(name)} not in the snapshot")
    return problems


def _hard_link_problems(
    groups: Mapping[tuple[int | None, int], Sequence[bytes]], restored: Mapping[bytes, Entry]
) -> list[Mismatch]:
    problems: list[Mismatch] = []
    owner_of: dict[int, bytes] = {}
    for paths in groups.values():
        first = restored[paths[0]].inode
        for path in paths[1:]:
            if restored[path].inode != first:
                problems.append(
                    Mismatch(path, f"not a hard link of {display(paths[0])} as in the snapshot")
                )
        for path in paths:
            inode = restored[path].inode
            other = owner_of.setdefault(inode, paths[0])
            if other != paths[0]:
                problems.append(
                    Mismatch(path, f"hard link of {display(other)}, separate files in the snapshot")
                )
    return problems


def _time(ns: int) -> str:
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp(ns // 1_000_000_000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ns % 1_000_000_000:09d}Z"


class Cancelled(Exception):
    """Hashing was stopped from outside (the test is being abandoned)."""


def hash_file(path: str | bytes, chunk: int = CHUNK, cancel: threading.Event | None = None) -> str:
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


def _hash_one(path: str | bytes, cancel: threading.Event | None = None) -> Hashed:
    try:
        size = os.path.getsize(path)
        return Hashed(path, hash_file(path, cancel=cancel), size)
    except OSError as error:
        return Hashed(path, None, 0, error.strerror or str(error))
    except Cancelled:
        return Hashed(path, None, 0, "not hashed: the test was stopped")


def hash_files(
    paths: Iterable[str | bytes],
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
    changed_since: tuple[bytes, ...]
    mismatches: tuple[Mismatch, ...]


@dataclass(frozen=True)
class LiveFiles:
    """Live files of this host that match the snapshot's size and mtime, and those that don't.

    The live copy of a node is `root` + its path.
    """

    root: bytes
    unchanged: tuple[Node, ...]
    changed: tuple[bytes, ...]


def find_live_files(nodes: Sequence[Node], live_root: str | bytes = "/") -> LiveFiles:
    """Given snapshot nodes, return which exist on this host unchanged (size and mtime).

    Files absent on this host, not regular files there, or listed with replaced bytes
    in their name (no exact path to look at) are in neither list.
    """
    unchanged: list[Node] = []
    changed: list[bytes] = []
    root = os.fsencode(live_root).rstrip(b"/")
    for node in nodes:
        if node.type != "file" or not node.exact:
            continue
        try:
            info = os.lstat(root + node.path)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        same = info.st_size == node.size and (
            node.mtime_ns is not None and abs(info.st_mtime_ns - node.mtime_ns) < 1_000_000
        )
        if same:
            unchanged.append(node)
        else:
            changed.append(node.path)
    return LiveFiles(root, tuple(unchanged), tuple(changed))


def same_content(
    left: bytes, right: bytes, chunk: int = CHUNK, cancel: threading.Event | None = None
) -> str | None:
    """Given two files, return None if their content is identical, else what differs.

    Both are read once, a chunk at a time; no hash is needed to compare two copies.
    Raise OSError if one cannot be read, Cancelled if `cancel` is set meanwhile.
    """
    with open(left, "rb", buffering=0) as one, open(right, "rb", buffering=0) as two:
        offset = 0
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled(display(left))
            a, b = one.read(chunk), two.read(chunk)
            if a != b:
                return f"content differs from byte {offset}" if a and b else "length differs"
            if not a:
                return None
            offset += len(a)


def compare_live(
    live: LiveFiles,
    restored: Mapping[bytes, bytes],
    restored_root: str | bytes,
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> LiveComparison:
    """Given unchanged live files and {snapshot path: restored path}, compare their content.

    Restored paths are relative to `restored_root`. A live file with the snapshot's
    size and mtime but other content is a mismatch; a read error of the restored copy
    is one too (a live file that cannot be read is not compared). Files are compared
    several at a time, a bounded batch at once (memory stays flat with many files).
    """
    base = os.fsencode(restored_root).rstrip(b"/")

    def one(node: Node) -> tuple[Node, str | None, str | None]:
        path = live.root + node.path
        try:
            os.stat(path)
        except OSError:
            return node, None, "live-unreadable"
        try:
            return node, same_content(base + restored[node.path], path), None
        except OSError as error:
            return node, None, error.strerror or str(error)

    compared = identical = 0
    mismatches: list[Mismatch] = []
    count = max(1, workers or min(8, os.cpu_count() or 1))
    todo = [node for node in live.unchanged if node.path in restored]
    with ThreadPoolExecutor(max_workers=count) as pool:
        for start in range(0, len(todo), 256):
            for node, difference, error in pool.map(one, todo[start:start + 256]):
                if progress:
                    progress(node.size)
                if error == "live-unreadable":
                    continue
                if error is not None:
                    mismatches.append(Mismatch(node.path, f"read error: {error}"))
                    continue
                compared += 1
                if difference is None:
                    identical += 1
                else:
                    mismatches.append(Mismatch(
                        node.path, "content differs from the live file of same size and mtime"
                    ))
    changed = tuple(p for p in live.changed if p in restored)
    return LiveComparison(compared, identical, changed, tuple(mismatches))

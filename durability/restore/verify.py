"""Verification of a restored tree against the snapshot, and against the live files.

`TreeComparison` compares a restored tree with the snapshot one folder at a time
(`compare_groups` reads each restored folder as bytes when its turn comes, and
`RestoredFolders` finds it), so memory follows the largest folder, not the snapshot;
`TreeComparison.folder` is pure apart from extended attributes. The content of
restored files is checked by `restic restore --verify` against the snapshot's blob
hashes; `LiveComparer` compares restored files with live files of the same size and
mtime byte for byte, several at a time (reads release the GIL). `hash_files` hashes
files (S3 objects, archive members).
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import os
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
    # The restored file's link count (0: not known, as if it might be shared).
    links: int = 0


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
        links=info.st_nlink,
    )


def read_folder(full: bytes) -> dict[bytes, Entry] | None:
    """Given a restored folder's path, return {name: Entry} of what it holds.

    None when it is not a folder that can be read (missing, or not a folder).
    """
    try:
        with os.scandir(full) as listing:
            names = [item.name for item in listing]
    except OSError:
        return None
    entries: dict[bytes, Entry] = {}
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            entries[name] = _entry(full + b"/" + name)
    return entries


# Mismatches listed at most (the count goes on): a wholly wrong restore of millions of
# files must not hold one record per file.
MISMATCH_LIMIT = 1000


@dataclass(frozen=True)
class TreeResult:
    """The comparison of a restored tree with the snapshot's nodes."""

    mismatches: tuple[Mismatch, ...]
    # Mismatches beyond those listed (past MISMATCH_LIMIT).
    more: int
    files_restored: int
    files_verified: int
    bytes_restored: int


def _by_path(mismatch: Mismatch) -> bytes:
    return mismatch.path


class TreeComparison:
    """Compares a restored tree with the snapshot, one folder at a time.

    Memory grows with the largest folder and with the files that are hard links, not
    with the snapshot: each folder's nodes are compared with that folder's restored
    entries, then dropped. Hard links are matched across folders by their snapshot
    (device, inode) and by restored inodes that have more than one link.
    `on_verified(node, restored path)` is called for each file that came back as a
    file of the right size (live comparison).
    """

    def __init__(
        self,
        *,
        allow_extra_dirs: bool = False,
        owner: bool = False,
        xattrs: bool = False,
        limit: int = MISMATCH_LIMIT,
        on_verified: Callable[[Node, bytes], None] | None = None,
    ) -> None:
        self.allow_extra_dirs = allow_extra_dirs
        self.owner = owner
        self.xattrs = xattrs
        self.limit = limit
        self.on_verified = on_verified
        self._mismatches: list[Mismatch] = []
        self._more = 0
        self.files_restored = 0
        self.files_verified = 0
        self.bytes_restored = 0
        # Snapshot hard link group -> (first restored path, its restored inode).
        self._groups: dict[tuple[int | None, int], tuple[bytes, int]] = {}
        # Restored inode (with more than one link) -> (its group, first path claiming it).
        self._claims: dict[int, tuple[tuple[int | None, int] | bytes, bytes]] = {}

    def add(self, mismatch: Mismatch) -> None:
        """Record one mismatch: the first `limit` by path are listed, all are counted."""
        bisect.insort(self._mismatches, mismatch, key=_by_path)
        if len(self._mismatches) > self.limit:
            self._mismatches.pop()
            self._more += 1

    def folder(
        self,
        nodes: Sequence[Node],
        listing: Mapping[bytes, Entry] | None,
        restored_folder: bytes,
        root: bytes | None = None,
    ) -> None:
        """Compare one folder: its snapshot nodes with its restored entries {name: Entry}.

        `listing` None means the folder did not come back (each node is missing).
        `restored_folder` is the folder's path in the snapshot as restored (raw bytes);
        `root` the restored tree's path on disk, for extended attributes.
        """
        if listing is None:
            for node in nodes:
                self.add(Mismatch(node.path, f"missing ({node.type} expected)"))
            return
        claimed: set[bytes] = set()
        inexact: list[Node] = []
        for node in nodes:
            name = node.name
            if node.exact:
                got = listing.get(name)
                if got is None:
                    self.add(Mismatch(node.path, f"missing ({node.type} expected)"))
                else:
                    claimed.add(name)
                    self._pair(node, restored_folder + b"/" + name, got, root)
            else:
                inexact.append(node)
        if inexact:
            lossy: dict[bytes, list[bytes]] = {}
            for name in sorted(listing):
                if name not in claimed:
                    lossy.setdefault(go_lossy(name).encode("utf-8"), []).append(name)
            for node in inexact:
                candidates = lossy.get(node.name)
                if candidates:
                    name = candidates.pop(0)
                    claimed.add(name)
                    self._pair(node, restored_folder + b"/" + name, listing[name], root)
                else:
                    self.add(Mismatch(node.path, f"missing ({node.type} expected)"))
        for name, got in listing.items():
            if name in claimed or (self.allow_extra_dirs and got.type == "dir"):
                continue
            self.add(Mismatch(restored_folder + b"/" + name, f"not in the snapshot ({got.type})"))

    def _pair(self, node: Node, path: bytes, got: Entry, root: bytes | None) -> None:
        if got.type != node.type:
            self.add(Mismatch(path, f"is a {got.type}, expected a {node.type}"))
            return
        problems = _node_problems(node, got, self.owner)
        if self.xattrs and root is not None and node.xattrs is not None and (
            node.type != "symlink"
        ):
            problems.extend(_xattr_problems(node, root + path))
        for problem in problems:
            self.add(Mismatch(path, problem))
        if node.type != "file":
            return
        self.files_restored += 1
        if node.links is not None and node.inode is not None:
            self._link(node, path, got)
        if got.size == node.size:
            self.files_verified += 1
            self.bytes_restored += got.size
            if self.on_verified is not None:
                self.on_verified(node, path)

    def _link(self, node: Node, path: bytes, got: Entry) -> None:
        group: tuple[int | None, int] | bytes = path
        if node.links is not None and node.links > 1 and node.inode is not None:
            key = (node.device, node.inode)
            group = key
            first = self._groups.setdefault(key, (path, got.inode))
            if first[0] != path and first[1] != got.inode:
                self.add(Mismatch(
                    path, f"not a hard link of {display(first[0])} as in the snapshot"
                ))
        if got.links == 1:
            return  # a restored file with one link is no other file's link
        other = self._claims.setdefault(got.inode, (group, path))
        if other[0] != group:
            self.add(Mismatch(
                path, f"hard link of {display(other[1])}, separate files in the snapshot"
            ))

    def result(self) -> TreeResult:
        """Return what was compared so far (mismatches sorted by path)."""
        return TreeResult(
            tuple(self._mismatches), self._more,
            self.files_restored, self.files_verified, self.bytes_restored,
        )


_REPLACED = "\ufffd".encode("utf-8")


class RestoredFolders:
    """Finds where each of the snapshot's folders came back in the restored tree.

    A folder is found only as a real folder: a symlink in its path (a folder that came
    back as a link, perhaps to somewhere outside) is not followed, and the folder is
    then absent. A folder listed with replaced bytes (U+FFFD where a name is not
    UTF-8) may be any restored folder whose path Go prints the same way; each listed
    folder of that path takes a different one, in name order, so no restored folder is
    compared twice and none is passed over (fewer restored than listed: the rest are
    absent). Each restored folder's names are mapped once.
    """

    def __init__(self, root: str | bytes) -> None:
        self.base = os.fsencode(root).rstrip(b"/")
        self._real_base = os.path.realpath(self.base)
        self._names: dict[bytes, dict[bytes, list[bytes]]] = {}
        self._left: dict[bytes, list[bytes]] = {}

    def is_folder(self, folder: bytes) -> bool:
        """Return True if `folder` (a snapshot path) is a real restored folder."""
        full = self.base + folder
        return os.path.isdir(full) and os.path.realpath(full) == self._real_base + folder

    def _children(self, folder: bytes) -> dict[bytes, list[bytes]]:
        known = self._names.get(folder)
        if known is None:
            known = {}
            try:
                with os.scandir(self.base + folder) as listing:
                    names = sorted(i.name for i in listing if i.is_dir(follow_symlinks=False))
            except OSError:
                names = []
            for name in names:
                known.setdefault(go_lossy(name).encode("utf-8"), []).append(name)
            self._names[folder] = known
        return known

    def _matches(self, listed: bytes) -> list[bytes]:
        found = [b""]
        for part in listed.split(b"/")[1:]:
            found = [
                folder + b"/" + name for folder in found
                for name in self._children(folder).get(part, ())
            ]
        return sorted(found)

    def take(self, folder: bytes) -> bytes | None:
        """Return where `folder` came back, or None if it did not (as a real folder)."""
        if _REPLACED not in folder:
            return folder if not folder or self.is_folder(folder) else None
        left = self._left.get(folder)
        if left is None:
            left = self._left[folder] = self._matches(folder)
        return left.pop(0) if left else None


def compare_groups(
    groups: Iterable[tuple[bytes, Sequence[Node]]], root: str | bytes,
    comparison: TreeComparison, *, sample: bool = False,
) -> None:
    """Given the snapshot's folders (path, children) and the restored tree, compare them.

    Each folder is read from disk when its turn comes (its entries only), so memory
    does not grow with the snapshot. With `sample` (only some files were restored, the
    groups holding them and the folders above), every restored folder no group names
    is read as well: anything there but folders is not in the sample.
    """
    places = RestoredFolders(root)
    base = places.base
    covered: set[bytes] = set()
    for folder, nodes in groups:
        place = places.take(folder)
        if place == b"" and not os.path.isdir(base):
            place = None
        listing = read_folder(base + place) if place is not None else None
        comparison.folder(nodes, listing, place if place is not None else folder, base)
        if sample and place is not None:
            covered.add(place)
    if sample:
        _extra_in_sample(base, covered, comparison)


def _extra_in_sample(base: bytes, covered: set[bytes], comparison: TreeComparison) -> None:
    cut = len(base)
    for current, dirs, files in os.walk(base):
        folder = current[cut:]
        if folder in covered:
            continue
        for name in (*dirs, *files):
            full = current + b"/" + name
            with contextlib.suppress(FileNotFoundError):
                kind = entry_type(os.lstat(full).st_mode)
                if kind != "dir":
                    comparison.add(Mismatch(full[cut:], f"not in the snapshot ({kind})"))


def _xattrs(path: bytes) -> dict[bytes, bytes]:
    names = os.listxattr(path, follow_symlinks=False)
    return {
        os.fsencode(name): os.getxattr(path, name, follow_symlinks=False) for name in names
    }


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
    # Live files whose size or mtime changed since the snapshot (at most the limit),
    # and how many more there were.
    changed_since: tuple[bytes, ...]
    changed_more: int


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


class LiveComparer:
    """Compares restored files with this host's live files, as the files are verified.

    A live file (`live_root` + the snapshot path) with the snapshot's size and mtime is
    compared byte for byte with the restored copy, several at a time (reads release
    the GIL), at most a bounded number waiting: memory stays flat with many files.
    Other content, or a restored copy that cannot be read, is a mismatch (given to
    `report`); a live file that changed since the snapshot is listed apart; one that is
    absent, not a regular file, unreadable, or whose name holds replaced bytes (no
    exact path to look at) is not compared.
    """

    def __init__(
        self,
        live_root: str | bytes,
        restored_root: str | bytes,
        report: Callable[[Mismatch], None],
        workers: int = 0,
        limit: int = MISMATCH_LIMIT,
    ) -> None:
        self.root = os.fsencode(live_root).rstrip(b"/")
        self.base = os.fsencode(restored_root).rstrip(b"/")
        self.report = report
        self.limit = limit
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers or min(8, os.cpu_count() or 1)))
        self._waiting: deque[Future[tuple[Node, str | None, str | None]]] = deque()
        self._queued = self._compared = self._identical = self._changed_more = 0
        self._changed: list[bytes] = []

    def offer(self, node: Node, restored: bytes) -> None:
        """Compare the restored file at `restored` (a snapshot path) with its live copy."""
        if node.type != "file" or not node.exact:
            return
        live = self.root + node.path
        try:
            info = os.lstat(live)
        except OSError:
            return
        if not stat.S_ISREG(info.st_mode):
            return
        same = info.st_size == node.size and (
            node.mtime_ns is not None and abs(info.st_mtime_ns - node.mtime_ns) < 1_000_000
        )
        if not same:
            if len(self._changed) < self.limit:
                self._changed.append(node.path)
            else:
                self._changed_more += 1
            return
        self._waiting.append(self._pool.submit(self._one, node, live, self.base + restored))
        while len(self._waiting) > 256:
            self._take()

    @staticmethod
    def _one(node: Node, live: bytes, restored: bytes) -> tuple[Node, str | None, str | None]:
        try:
            os.stat(live)
        except OSError:
            return node, None, "live-unreadable"
        try:
            return node, same_content(restored, live), None
        except OSError as error:
            return node, None, error.strerror or str(error)

    def _take(self) -> None:
        node, difference, error = self._waiting.popleft().result()
        if error == "live-unreadable":
            return
        if error is not None:
            self.report(Mismatch(node.path, f"read error: {error}"))
            return
        self._compared += 1
        if difference is None:
            self._identical += 1
        else:
            self.report(Mismatch(
                node.path, "content differs from the live file of same size and mtime"
            ))

    def finish(self) -> LiveComparison:
        """Wait for the comparisons still running; return the totals."""
        while self._waiting:
            self._take()
        self._pool.shutdown()
        return LiveComparison(
            self._compared, self._identical, tuple(sorted(self._changed)), self._changed_more
        )

    def close(self) -> None:
        """Stop: drop the comparisons not begun (after a failure or a signal)."""
        for future in self._waiting:
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)

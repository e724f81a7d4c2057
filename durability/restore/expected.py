"""The nodes a restore test expects, held on disk a folder at a time.

A snapshot of millions of files does not fit in memory as one object per file. Its
nodes are written, as they are listed or read from its trees, into an anonymous file on
the scratch disk (it has no name, so nothing is left behind even if the process is
killed), one folder's children at a time; the comparison reads them back a folder at a
time. What the test needs before the restore is counted on the way in: files, bytes,
folders, names listed with replaced bytes, a random sample, and a keyed digest of the
entries (per folder while there are few folders) to prove that two readings of one
snapshot (its listing and its trees) hold the same entries.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import pickle
import random
import tempfile
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import IO

from durability.errors import ParseError
from durability.resticls import LsSnapshot, Node, go_lossy, parent_of
from durability.restore.scratch import ScratchError

Group = tuple[bytes, list[Node]]

_MASK = (1 << 128) - 1


class Spool:
    """A snapshot's nodes in folder groups, on disk; counted and sampled as they come.

    `sample` files are kept at random (reservoir sampling with `rng`, one pass, memory
    of the sample only). With `digest` the entries are digested (to compare with
    another spool of the same snapshot made with the same `key`); `digests` is how
    many folders get a digest of their own, past which only the whole snapshot's
    digest is kept. Use as a context manager, or call `close`.
    """

    def __init__(
        self,
        directory: str,
        *,
        sample: int = 0,
        rng: random.Random | None = None,
        digest: bool = False,
        digests: int = 0,
        key: bytes | None = None,
    ) -> None:
        self.directory = directory
        try:
            self._file: IO[bytes] = tempfile.TemporaryFile(  # noqa: SIM115 (closed by close)
                dir=directory, prefix=".nodes-"
            )
        except OSError as error:
            raise self._failed(error) from error
        self.snapshot: LsSnapshot | None = None
        self.entries = self.files = self.bytes = self.folders = self.inexact = 0
        self.sample: list[Node] = []
        self._sample_size = sample
        self._rng = rng or random.SystemRandom()
        self._digest_limit = digests
        self.key = key or os.urandom(32)
        self.digested = digest
        self.folder_digests: dict[str, tuple[int, int]] | None = (
            {} if digest and digests else None
        )
        self.digest = 0
        self._reading = False

    def add(self, folder: bytes, nodes: list[Node]) -> None:
        """Write one folder's children (b"" is the snapshot's root)."""
        if self._reading:
            raise RuntimeError("the spool is being read")
        try:
            pickle.dump((folder, nodes), self._file, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError as error:
            raise self._failed(error) from error
        self.folders += 1
        self.entries += len(nodes)
        for node in nodes:
            if not node.exact:
                self.inexact += 1
            if node.type == "file":
                self._sampled(node)
                self.files += 1
                self.bytes += node.size
        if not self.digested:
            return
        folder_sum = sum(map(self._digest_of, nodes))
        self.digest = (self.digest + folder_sum) & _MASK
        if self.folder_digests is not None:
            if len(self.folder_digests) >= self._digest_limit:
                self.folder_digests = None  # too many folders: the total digest only
            else:
                shown = go_lossy(folder)
                count, total = self.folder_digests.get(shown, (0, 0))
                self.folder_digests[shown] = (count + len(nodes), (total + folder_sum) & _MASK)

    @property
    def size(self) -> int:
        """Return the bytes written so far (buffered ones included)."""
        return 0 if self._file.closed else self._file.tell()

    def _failed(self, error: OSError) -> ScratchError:
        reason = (error.strerror or str(error)).lower()
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            return ScratchError(
                f"scratch disk full: the list of the snapshot's entries cannot be written "
                f"to {self.directory}: {reason}"
            )
        return ScratchError(
            f"the list of the snapshot's entries cannot be written to {self.directory}: "
            f"{reason}"
        )

    def _digest_of(self, node: Node) -> int:
        """Return a keyed digest of what a listing and a tree both say of a node."""
        text = f"{go_lossy(node.path)}\0{node.type}\0{node.size}".encode("utf-8", "surrogatepass")
        digest = hashlib.blake2b(text, digest_size=16, key=self.key).digest()
        return int.from_bytes(digest, "big")

    def _sampled(self, node: Node) -> None:
        if not self._sample_size:
            return
        seen = self.files  # files before this one
        if seen < self._sample_size:
            self.sample.append(node)
        else:
            slot = self._rng.randrange(seen + 1)
            if slot < self._sample_size:
                self.sample[slot] = node

    def groups(self) -> Iterator[Group]:
        """Yield the folder groups in the order they were written (one reader at a time)."""
        try:
            self._file.flush()
        except OSError as error:
            raise self._failed(error) from error
        self._file.seek(0)
        self._reading = True
        try:
            for _ in range(self.folders):
                try:
                    group: Group = pickle.load(self._file)  # noqa: S301 (our own unnamed file)
                except OSError as error:
                    raise self._failed(error) from error
                except (pickle.UnpicklingError, EOFError, ValueError) as error:
                    raise ScratchError(
                        f"the list of the snapshot's entries in {self.directory} cannot be "
                        f"read back ({type(error).__name__})"
                    ) from error
                yield group
        finally:
            self._reading = False
            self._file.seek(0, os.SEEK_END)

    def close(self) -> None:
        """Drop the file (it has no name: the space is freed at once).

        Nodes still buffered are dropped with it: an error writing them is no error.
        """
        with contextlib.suppress(OSError):
            self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


class ListingGroups:
    """Turns `restic ls` nodes (a folder, then what it holds, depth first) into groups.

    A folder's children are gathered until the listing leaves the folder, then written;
    only the folders on the current path are held. A node listed outside the folder it
    belongs to is not a listing restic prints: ParseError.
    """

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self._open: list[Group] = [(b"", [])]

    def feed(self, node: Node) -> None:
        """Take the next node of the listing."""
        parent = node.folder
        while len(self._open) > 1 and self._open[-1][0] != parent:
            self.spool.add(*self._open.pop())
        if self._open[-1][0] != parent:
            raise ParseError(f"restic ls: {node.path!r} is listed outside its folder")
        self._open[-1][1].append(node)
        if node.type == "dir":
            self._open.append((node.path, []))

    def finish(self) -> Spool:
        """Write the folders still open; return the spool."""
        while self._open:
            self.spool.add(*self._open.pop())
        return self.spool


def sample_groups(nodes: Sequence[Node]) -> Iterator[Group]:
    """Given sampled nodes, yield them by folder, with every folder above them (empty).

    The folders above are compared too (a restored file that no sampled node names is
    found there), each of their sub-folders being allowed.
    """
    by_folder: dict[bytes, list[Node]] = {b"": []}
    for node in nodes:
        folder = node.folder
        by_folder.setdefault(folder, []).append(node)
        while folder:
            folder = parent_of(folder)
            by_folder.setdefault(folder, [])
    for folder in sorted(by_folder):
        yield folder, by_folder[folder]


def disagreement(listing: Spool, trees: Spool) -> str | None:
    """Given one snapshot's listing and its trees, spooled, return how they differ, or None.

    Both must hold the same entries (paths compared as the listing prints them, types,
    sizes): same count and same keyed digest. The first folder that differs is named
    when both kept per-folder digests.
    """
    if listing.key != trees.key or not (listing.digested and trees.digested):
        raise ValueError("only spools digested with one key can be compared")
    if (listing.entries, listing.digest) == (trees.entries, trees.digest):
        return None
    text = (f"the snapshot's listing ({listing.entries} entries) and its trees "
            f"({trees.entries}) disagree")
    left, right = listing.folder_digests, trees.folder_digests
    if left is not None and right is not None:
        for folder in sorted(set(left) | set(right)):
            if left.get(folder) != right.get(folder):
                return f"{text}, first in folder {folder or '/'}"
    return text

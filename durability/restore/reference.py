"""What a restic snapshot says it holds, read for a restore test to compare against.

- The snapshot set, damaged ones included: every file under the repository's
  `snapshots/` is a snapshot. restic skips one it cannot load (a flipped byte, a
  truncated file) with a warning and exit 0, so the files are listed on their own and
  a file that does not load is reported, never passed over.
- The node listing (`restic ls --json`, one restic for the whole snapshot).
- The snapshot's own trees: raw name bytes, symlink targets, hard links and extended
  attributes, which `ls` does not carry. A local repository's trees are read directly
  from its packs (`durability.resticlocal`), all of them; elsewhere `restic cat blob`
  reads them, one restic per folder, up to a budget of folders, beyond which those
  properties are reported as not verified.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from durability import resticls
from durability.errors import ParseError
from durability.restic import Restic, ResticError, ResticSnapshot, parse_snapshots
from durability.resticlocal import Damaged, LocalRepository, Unsupported
from durability.resticls import Node
from durability.restore import resticops as ops
from durability.restore.expected import ListingGroups, Spool
from durability.restore.scratch import ScratchError

log = logging.getLogger(__name__)

# Folders whose trees are read at most (each read starts restic once).
TREE_BUDGET = 64
TREE_WORKERS = 4

_ID = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class SnapshotSet:
    """The snapshots restic could load, and the IDs of snapshot files it could not."""

    snapshots: tuple[ResticSnapshot, ...]
    damaged: tuple[str, ...]


def _snapshot_files(repo: Restic) -> set[str]:
    folder = ops.local_folder(repo.repository)
    if folder is not None:
        try:
            names = os.listdir(os.path.join(folder, "snapshots"))
        except OSError as error:
            raise ops.ResticFailure(
                f"cannot list {folder}/snapshots: {error.strerror or error}", ops.KIND_OTHER
            ) from error
        return {name for name in names if _ID.fullmatch(name)}
    listed = ops.call(repo, ["list", "snapshots"], no_lock=True).stdout.split()
    return {name for name in listed if _ID.fullmatch(name)}


def _loaded(repo: Restic) -> list[ResticSnapshot]:
    done = ops.call(repo, ["snapshots", "--json"], no_lock=True)
    try:
        return parse_snapshots(done.stdout)
    except ResticError as error:
        raise ops.ResticFailure(str(error), ops.KIND_OTHER) from error


def list_snapshot_set(repo: Restic) -> SnapshotSet:
    """Given a repository, return its snapshots and the snapshot files restic cannot load.

    The two listings run at once. A file that appears between them (a backup just
    finished) is not damaged: the listing is repeated once before a file is called
    damaged. Raise ResticFailure if restic fails.
    """
    with ThreadPoolExecutor(max_workers=2) as pool:
        loaded = pool.submit(_loaded, repo)
        files = pool.submit(_snapshot_files, repo)
        snapshots, ids = loaded.result(), files.result()
    unloaded = ids - {s.id for s in snapshots}
    if unloaded:
        snapshots = _loaded(repo)
        unloaded -= {s.id for s in snapshots}
    return SnapshotSet(tuple(snapshots), tuple(sorted(unloaded)))


def damaged_choice(found: SnapshotSet, which: str) -> str | None:
    """Given the snapshot set and the snapshot asked for, return why it cannot be tested.

    With damaged snapshot files, `latest` and `random` cannot be chosen honestly (a
    damaged file may be the newest); an ID naming a damaged file is damaged. Return
    None when the choice is sound.
    """
    if not found.damaged:
        return None
    shown = ", ".join(item[:8] for item in found.damaged[:3])
    count = len(found.damaged)
    what = f"{count} snapshot file{'s' if count > 1 else ''} ({shown}) cannot be loaded"
    if which in ("latest", "random"):
        return (
            f"{what}: damaged; the newest snapshot cannot be told, so {which} is not "
            "tested in its place"
        )
    if any(item.startswith(which.lower()) for item in found.damaged):
        return f"snapshot {which} cannot be loaded: its snapshot file is damaged"
    return None


def _tree_unreadable(failure: ops.ResticFailure, what: str) -> ops.ResticFailure:
    """Given a failure to read a loadable snapshot's trees, return it judged as data.

    restic 0.18 crashes (a Go panic, exit 2) on a damaged tree instead of naming it;
    the panic's first line is the reason then, never a stack frame.
    """
    if failure.kind not in (ops.KIND_OTHER, ops.KIND_DATA):
        return failure
    panic = re.search(r"^panic: (.+)$", failure.stderr, re.M)
    reason = f"restic crashed: {panic[1].strip()}" if panic else str(failure)
    return ops.ResticFailure(f"{what} cannot be read: {reason}", ops.KIND_DATA,
                             failure.returncode, stderr=failure.stderr)


def _listing(repo: Restic, which: str, spool: Spool) -> Spool:
    """Run `restic ls --json WHICH` into `spool`, parsing its lines as they come.

    Nothing is held but the folders on the current path: the nodes go to the spool a
    folder at a time. It goes through the seam like every restic call: bounded by the
    timeout and by the retry budget of an unreachable backend. A line that does not
    parse stops restic.
    """
    grouper = ListingGroups(spool)
    # The first line that does not parse, or the node list that cannot be written.
    bad: list[ParseError | ScratchError] = []
    number = nodes = 0

    def feed(line: str) -> None:
        nonlocal number, nodes
        number += 1
        if bad:
            return
        try:
            entry = resticls.parse_ls_line(line, number)
            if isinstance(entry, resticls.LsSnapshot):
                if spool.snapshot is not None or nodes:
                    raise ParseError("restic ls: a second snapshot line", line=number)
                spool.snapshot = entry
            elif entry is not None:
                nodes += 1
                grouper.feed(entry)
        except (ParseError, ScratchError) as error:
            bad.append(error)

    try:
        ops.call(repo, ["ls", "--json", which], no_lock=True, on_stdout=feed,
                 keep_stdout=False, stop_when=lambda: "its output could not be read" if bad
                 else None)
    except ops.ResticFailure:
        if bad:
            raise _listing_failure(bad[0]) from bad[0]
        raise
    if bad:
        raise _listing_failure(bad[0]) from bad[0]
    return grouper.finish()


def _listing_failure(error: ParseError | ScratchError) -> Exception:
    """A full scratch disk stays itself (UNKNOWN); output that does not parse is restic's."""
    if isinstance(error, ScratchError):
        return error
    return ops.ResticFailure(str(error), ops.KIND_OTHER)


def list_nodes(repo: Restic, snapshot_id: str, spool: Spool) -> Spool:
    """Given a snapshot, spool `restic ls --json` of it, parsed; return the spool.

    Raise ResticFailure if restic fails (kind data when restic could not read the
    snapshot's trees) or its output is not a listing of that snapshot.
    """
    try:
        _listing(repo, snapshot_id, spool)
    except ops.ResticFailure as failure:
        raise _tree_unreadable(failure, f"the tree of snapshot {snapshot_id[:8]}") from failure
    if spool.snapshot is not None and spool.snapshot.id != snapshot_id:
        raise ops.ResticFailure(
            f"restic ls listed snapshot {spool.snapshot.id[:8]}, not {snapshot_id[:8]}",
            ops.KIND_OTHER,
        )
    return spool


def read_tree(
    repo: Restic, tree_id: str, folder: bytes, local: LocalRepository | None = None
) -> list[Node]:
    """Given a tree blob's ID and its folder, return its nodes (raw names).

    With `local` (a local repository's direct reader) the blob is read from its pack,
    authenticated; else `restic cat blob` reads it. Raise ResticFailure if it cannot
    be read or parsed (a damaged tree is data).
    """
    if local is not None:
        try:
            text = local.tree(tree_id)
        except Damaged as error:
            shown = resticls.display(folder or b"/")
            raise ops.ResticFailure(
                f"the tree of {shown} ({tree_id[:8]}) cannot be read: {error}", ops.KIND_DATA
            ) from error
        except Unsupported as error:
            log.info("tree %s read by restic: %s", tree_id[:8], error)
        else:
            try:
                return resticls.parse_tree(text, folder)
            except ParseError as error:
                raise ops.ResticFailure(str(error), ops.KIND_DATA) from error
    try:
        done = ops.call(repo, ["cat", "blob", tree_id], no_lock=True)
    except ops.ResticFailure as failure:
        shown = resticls.display(folder or b"/")
        raise _tree_unreadable(failure, f"the tree of {shown} ({tree_id[:8]})") from failure
    try:
        return resticls.parse_tree(done.stdout, folder)
    except ParseError as error:
        raise ops.ResticFailure(str(error), ops.KIND_DATA) from error


def read_trees(
    repo: Restic, root_tree: str, spool: Spool, workers: int = TREE_WORKERS,
    should_stop: Callable[[], bool] | None = None, local: LocalRepository | None = None,
) -> Spool:
    """Given the snapshot's root tree, spool every node of the snapshot, from its trees.

    Folders are taken depth first, up to `workers` read at once; only the folders
    waiting to be read are held (their tree IDs), never the nodes already spooled.
    Raise ResticFailure if a tree cannot be read.
    """
    waiting: list[tuple[str, bytes]] = [(root_tree, b"")]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while waiting:
            if should_stop is not None and should_stop():
                raise ops.ResticFailure("tree reading stopped", ops.KIND_OTHER)
            batch = [waiting.pop() for _ in range(min(workers, len(waiting)))]
            results = pool.map(lambda item: read_tree(repo, item[0], item[1], local), batch)
            for (_tree, folder), children in zip(batch, results, strict=True):
                spool.add(folder, children)
                for node in reversed(children):
                    if node.type == "dir":
                        if node.subtree is None:
                            raise ops.ResticFailure(
                                f"restic tree: folder {resticls.display(node.path)} has no "
                                "subtree", ops.KIND_DATA,
                            )
                        waiting.append((node.subtree, node.path))
    return spool


def include_pattern(node: Node) -> str:
    """Given a node, return a restic --include pattern matching exactly its path.

    Glob characters are escaped; a byte listed as U+FFFD (restic could not print it)
    becomes `?`, which in restic's matching stands for exactly one such byte. Exact
    bytes travel as they are (command-line arguments are bytes).
    """
    if node.exact:
        return ops.escape_pattern(os.fsdecode(node.path))
    text = node.path.decode("utf-8")
    return "?".join(ops.escape_pattern(part) for part in text.split("\ufffd"))


def restore_args(snapshot_id: str, target: str, includes: Sequence[str] = ()) -> list[str]:
    """Given a snapshot, a target folder and include patterns, return the restore arguments.

    The patterns are passed as they are (see `include_pattern`); the restore verifies.
    """
    args = ["restore", snapshot_id, "--target", target, "--verify"]
    for pattern in includes:
        args += ["--include", pattern]
    return args


def list_nodes_of(repo: Restic, which: str, spool: Spool) -> Spool:
    """Given `latest` or a snapshot ID prefix, spool `restic ls --json` of it, parsed.

    The caller checks the snapshot line names the snapshot it chose. Raise
    ResticFailure if restic fails or the output is not a listing.
    """
    return _listing(repo, which, spool)

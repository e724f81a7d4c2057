"""Gather: run one restore test of one source, always cleaning up its scratch folder.

The phases (list, restore, verify, cleanup) are timed; a failure stops the test and is
recorded in the `Outcome` as UNKNOWN (the test could not start, or the scratch disk
filled) or CRITICAL (the data is wrong). SIGTERM and SIGINT unwind through the same
`finally` that removes the scratch folder, then propagate.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from durability.config.restore import RestoreSettings
from durability.config.snapshots import SourceSettings
from durability.errors import DurabilityError, StateError
from durability.model import Status
from durability.restic import Restic, ResticSnapshot, parse_snapshots
from durability.resticlocal import Damaged, LocalRepository, Unsupported
from durability.resticls import Node
from durability.restore import reference
from durability.restore import resticops as ops
from durability.restore import scratch as scratch_mod
from durability.restore.expected import Group, Spool, disagreement, sample_groups
from durability.restore.outcome import Outcome, PhaseTimer
from durability.restore.progress import Progress, QuietProgress
from durability.restore.verify import (
    MISMATCH_LIMIT,
    LiveComparer,
    Mismatch,
    TreeComparison,
    compare_groups,
    coverage_of,
    keeps_xattrs,
)

if TYPE_CHECKING:
    from durability.state.store import Store

log = logging.getLogger(__name__)

IDENTITY = "repository identity"

T = TypeVar("T")


@dataclass(frozen=True)
class Options:
    """How to run one test: which snapshot, full or a sample, keep the tree or not."""

    snapshot: str = "latest"
    sample: int = 0
    keep: bool = False
    seed: int | None = None
    live_root: str = "/"
    hash_workers: int = 0
    tree_budget: int = reference.TREE_BUDGET
    # A local repository's snapshots, config, index and trees are read directly (one
    # restic start instead of one per folder); False asks restic for each, as for a
    # remote repository (tests use it to exercise that path on a local one).
    read_directly: bool = True
    # Called with the restored folder between the restore and the comparison (tests
    # use it to damage what came back, so the comparison itself is exercised).
    before_verify: Callable[[str], None] | None = None


class Stop(Exception):
    """The test cannot go on; `status` says how to judge that."""

    def __init__(self, status: Status, reason: str) -> None:
        self.status = status
        super().__init__(reason)


@dataclass
class Facts:
    """The facts of a test as they come in (frozen into an `Outcome` at the end)."""

    outcome: Outcome

    def update(self, **changes: object) -> None:
        """Record more facts."""
        self.outcome = replace(self.outcome, **changes)  # type: ignore[arg-type]


def restic_for(source: SourceSettings, program: str = "restic") -> Restic:
    """Given a restic source, return the wrapper reaching it (no cache: read for real).

    Raise Stop (UNKNOWN) if the source lacks its repository or password file.
    """
    if not source.repository:
        raise Stop(Status.UNKNOWN, f"source {source.name} has no repository")
    if not source.password_file:
        raise Stop(Status.UNKNOWN, f"source {source.name} has no password_file")
    problem = ops.password_file_usable(source.password_file)
    if problem:
        raise Stop(Status.UNKNOWN, problem)
    env: dict[str, str] = {}
    if source.access_key_id:
        env["AWS_ACCESS_KEY_ID"] = source.access_key_id
    if source.secret_access_key_file:
        from durability.secrets import SecretFileError, read_secret_text

        try:
            env["AWS_SECRET_ACCESS_KEY"] = read_secret_text(
                source.secret_access_key_file, "secret_access_key_file")
        except SecretFileError as error:
            raise Stop(Status.UNKNOWN, str(error)) from error
    if source.region:
        env["AWS_DEFAULT_REGION"] = source.region
    if source.profile:
        env["AWS_PROFILE"] = source.profile
    return Restic(
        repository=source.repository,
        password_file=source.password_file,
        binary=program,
        extra_env=env,
        no_cache=True,
        cacert=source.ca_bundle,
        retry_budget=source.timeout,
    )


def judge(failure: ops.ResticFailure, begun: bool) -> Status:
    """Given a restic failure and whether restoring had begun, return its status."""
    if failure.kind == ops.KIND_DATA:
        return Status.CRITICAL
    if failure.kind == ops.KIND_OTHER and begun:
        return Status.CRITICAL
    return Status.UNKNOWN


def with_lock_retry(repo: Restic, now: datetime, call: Callable[[], T]) -> T:
    """Run a restic call; on a lock conflict, name the holder.

    Only stale locks are ever removed (`restic unlock`, never --remove-all), and then
    the call is tried once more.
    """
    try:
        return call()
    except ops.ResticFailure as failure:
        if failure.kind != ops.KIND_LOCKED:
            raise
        holders, stale = ops.held_locks(repo, now)
        if holders or not stale:
            who = "; ".join(holders) if holders else str(failure)
            raise ops.ResticFailure(
                f"repository is locked ({who}); the lock is live and was left in place",
                ops.KIND_LOCKED,
            ) from failure
        log.info("removing stale locks of %s", repo.repository)
        ops.unlock_stale(repo)
        return call()


def run_restic(
    source: SourceSettings,
    settings: RestoreSettings,
    options: Options,
    now: datetime,
    progress: Progress | None = None,
    program: str = "restic",
    open_store: Callable[[], Store] | None = None,
) -> Outcome:
    """Given a restic source, restore one snapshot into scratch, verify it, clean up.

    The repository's id is compared with the one the snapshots feature recorded for
    the source (in the store `open_store` opens) before anything is restored; a
    different one stops the test CRITICAL. Without a store the identity is listed as
    not verified. Return the facts; raise Terminated or KeyboardInterrupt (after
    cleaning up) if the process is told to stop.
    """
    progress = progress or QuietProgress()
    mode = "sample" if options.sample else "full"
    facts = Facts(Outcome(source=source.name, kind="restic", mode=mode))
    timer = PhaseTimer()
    holder: list[scratch_mod.Scratch] = []
    begun = False
    try:
        repo = restic_for(source, program)
        scratch_mod.ensure_parent(settings.scratch_dir)
        scratch_mod.sweep_stale(settings.scratch_dir)
        with scratch_mod.terminate_as_exception():
            try:
                spools = Spools(settings.scratch_dir, options.sample, options.tree_budget)
                try:
                    with speculating(repo, settings, options) as speculation:
                        begun = _restic_phases(
                            repo, settings, options, now, progress, facts, timer, holder,
                            lambda identity: judge_identity(
                                source.name, identity, open_store, now),
                            speculation, spools,
                        )
                finally:
                    spools.close()
            except (scratch_mod.Terminated, KeyboardInterrupt):
                if holder:
                    _remove_own_stale_lock(repo)
                raise
            finally:
                cleanup_scratch(holder, options.keep, facts, timer)
    except Stop as stop:
        facts.update(failure=str(stop), failure_status=stop.status)
    except ops.ResticFailure as failure:
        begun = begun or bool(holder)
        facts.update(failure=str(failure), failure_status=judge(failure, begun))
    except scratch_mod.ScratchError as error:
        facts.update(failure=str(error), failure_status=Status.UNKNOWN)
    except DurabilityError as error:
        status = Status.CRITICAL if holder else Status.UNKNOWN
        facts.update(failure=str(error), failure_status=status)
    facts.update(seconds=tuple(timer.seconds.items()), overlap_seconds=timer.overlap)
    return facts.outcome


def judge_identity(
    source: str, repository_id: str, open_store: Callable[[], Store] | None, now: datetime
) -> tuple[str | None, str | None]:
    """Compare a repository's id with the one recorded for `source`; record a first one.

    Return (why it is not verified, why it is CRITICAL): (None, None) when it is the
    recorded id; a reason not verified when it was seen for the first time (and is
    recorded now) or no store can be read; a CRITICAL reason when it was replaced.
    """
    if open_store is None:
        return "no state store to compare it with", None
    from durability.snapshots import history

    try:
        store = open_store()
        recorded = history.recorded_identity(store, source)
        replaced = history.check_identity(store, source, repository_id, now)
    except StateError as error:
        return f"the recorded id could not be read: {error}", None
    if replaced:
        return None, replaced
    if recorded is None:
        return (f"first seen: id {repository_id[:8]} recorded now, later tests compare "
                "against it"), None
    return None, None


def _identity_reader(repo: Restic) -> Callable[[], str | ops.ResticFailure]:
    """Return a call reading the repository id (its failure returned, to be raised later)."""
    def call() -> str | ops.ResticFailure:
        try:
            return repo.repository_id()
        except ops.ResticFailure as failure:
            return failure

    return call


def _speculative_listing(repo: Restic, which: str, spools: Spools) -> Callable[[], Spool | None]:
    """Return a call listing the snapshot `which` names before it is chosen (or None).

    `latest` and an ID are listed while the snapshots and the index are read; the
    listing is used only if it is of the snapshot chosen in the end.
    """
    def call() -> Spool | None:
        if which == "random":
            return None
        try:
            return reference.list_nodes_of(repo, which, spools.open())
        except DurabilityError:
            return None

    return call


class Spools:
    """The node spools of one test (on the scratch disk, without names), closed together."""

    def __init__(self, directory: str, sample: int, tree_budget: int) -> None:
        self.directory = directory
        self.sample = sample
        self.digests = tree_budget
        self.rng: random.Random = random.SystemRandom()
        self._open: list[Spool] = []
        self._lock = threading.Lock()

    def open(self, key: bytes | None = None, digests: bool = True) -> Spool:
        """Return a new spool (sampling if the test samples; digests for comparing two)."""
        spool = Spool(self.directory, sample=self.sample, rng=self.rng, digest=digests,
                      digests=self.digests, key=key)
        with self._lock:
            self._open.append(spool)
        return spool

    def size(self) -> int:
        """Return the bytes the spools hold on the scratch disk."""
        with self._lock:
            return sum(spool.size for spool in self._open)

    def close(self) -> None:
        """Close every spool (their space is freed at once)."""
        with self._lock:
            for spool in self._open:
                spool.close()
            self._open.clear()


_RESTORING = re.compile(r"^restoring <?[Ss]napshot ([0-9a-f]{8,64})\b")


class Speculation:
    """A full restore of the snapshot asked for, begun while the repository is checked.

    restic starts, derives its key and reads the index while the snapshots, the
    listing and the repository's identity are read beside it. The restore is used
    only if every check passes and restic restored the snapshot chosen in the end
    (it names it on its first line); otherwise it is stopped and its folder removed.
    Until it is used it is not part of the test: a failure of the checks is judged
    as if nothing had been restored. It never takes the scratch disk below its
    reserve: restic is stopped first.
    """

    def __init__(self, repo: Restic, settings: RestoreSettings, which: str) -> None:
        self.repo = repo
        self.free_before = scratch_mod.free_bytes(settings.scratch_dir)
        self.scratch = scratch_mod.create(settings.scratch_dir)
        self.adopted = False
        self.killed = False
        self._cancel = threading.Event()
        self._named = threading.Event()
        # Waited on instead of Thread.join: a signal that interrupts a join on Python
        # 3.11 leaves the thread marked stopped while it still runs.
        self._done = threading.Event()
        self._restored: str | None = None
        self._result: BaseException | None = None
        guard = reserve_guard(settings)

        def stop_when() -> str | None:
            reason = "no longer needed" if self._cancel.is_set() else guard()
            self.killed = self.killed or reason is not None
            return reason

        def see(line: str) -> None:
            found = _RESTORING.match(line)
            if found and self._restored is None:
                self._restored = found[1]
                self._named.set()

        def run() -> None:
            try:
                ops.call(repo, reference.restore_args(which, self.scratch.tree),
                         on_stdout=see, stop_when=stop_when)
            except BaseException as error:  # handed to the thread that adopts it
                self._result = error
            finally:
                self._ended = time.perf_counter()
                self._named.set()
                self._done.set()

        self._thread = threading.Thread(target=run, name="speculative restore", daemon=True)
        self._started = self._ended = time.perf_counter()
        self._thread.start()

    @classmethod
    def begin(
        cls, repo: Restic, settings: RestoreSettings, options: Options
    ) -> Speculation | None:
        """Start one if the test restores a whole snapshot named in advance."""
        if options.sample or options.snapshot == "random" or options.before_verify:
            return None
        try:
            scratch_mod.check_space(settings.scratch_dir, 0, settings.reserve)
            return cls(repo, settings, options.snapshot)
        except scratch_mod.ScratchError:
            return None  # the test itself says why, in its own order

    def adopt(self, snapshot_id: str) -> bool:
        """Use the restore if restic is restoring `snapshot_id`; return whether it is."""
        self._named.wait()
        self.adopted = self._restored is not None and snapshot_id.startswith(self._restored)
        if not self.adopted:
            self.discard()
        return self.adopted

    @property
    def seconds(self) -> float:
        """Return how long restic ran (once it has finished)."""
        return self._ended - self._started

    def finish(self) -> None:
        """Wait for the adopted restore; raise its failure, if it failed."""
        self._done.wait()
        if self._result is not None:
            raise self._result

    def discard(self) -> None:
        """Stop restic and wait for it; remove the folder unless the restore was adopted.

        A restic stopped here leaves its lock behind (it is killed): that lock, stale
        now, is removed.
        """
        with scratch_mod.shielded():
            self._cancel.set()
            self._done.wait()
            if self.killed:
                self.killed = False
                _remove_own_stale_lock(self.repo)
            if not self.adopted and os.path.exists(self.scratch.root):
                try:
                    scratch_mod.remove_tree(self.scratch.root)
                except OSError as error:
                    log.warning("cannot remove scratch folder %s: %s", self.scratch.root, error)


def reserve_guard(settings: RestoreSettings) -> Callable[[], str | None]:
    """Return a check that says when the scratch disk has fallen below its reserve."""
    from durability.units import format_bytes

    def check() -> str | None:
        try:
            free = scratch_mod.free_bytes(settings.scratch_dir)
        except OSError:
            return None
        if free < settings.reserve:
            return (f"no space: {format_bytes(free)} left free on the scratch disk, less than "
                    f"its {format_bytes(settings.reserve)} reserve")
        return None

    return check


@contextlib.contextmanager
def speculating(
    repo: Restic, settings: RestoreSettings, options: Options
) -> Iterator[Speculation | None]:
    """Within the block, a restore begun early (or None); stopped and waited for after it."""
    speculation = Speculation.begin(repo, settings, options)
    try:
        yield speculation
    finally:
        if speculation is not None:
            speculation.discard()


def _restic_phases(
    repo: Restic,
    settings: RestoreSettings,
    options: Options,
    now: datetime,
    progress: Progress,
    facts: Facts,
    timer: PhaseTimer,
    holder: list[scratch_mod.Scratch],
    identity_of: Callable[[str], tuple[str | None, str | None]],
    speculation: Speculation | None,
    spools: Spools,
) -> bool:
    rng: random.Random = random.SystemRandom()
    if options.seed is not None:  # tests fix the choice; it protects nothing
        rng = random.Random(options.seed)  # noqa: S311
    spools.rng = rng
    with timer.phase("list"):
        # restic retries a missing pack for most of a minute before giving up, so the
        # index is checked against the pack files before anything reads a pack.
        # A local repository's config, index and trees are read directly after one
        # `restic cat masterkey` (every restic start costs a key derivation); elsewhere
        # restic reads them, the index listing taking a round of its own.
        folder = ops.local_folder(repo.repository)
        local = (
            _local_metadata(repo, folder)
            if folder is not None and options.read_directly else None
        )
        if local is not None:
            # The snapshot files, config and index were read directly: restic is not
            # started once more for them (nor for `ls`: the trees are the listing).
            found, present, early = local.snapshot_set, ops.list_packs(repo), None
            identity, index_sets = local.identity, local.index_sets
        else:
            first = _parallel(
                lambda: with_lock_retry(repo, now, lambda: reference.list_snapshot_set(repo)),
                lambda: ops.list_packs(repo),
                _speculative_listing(repo, options.snapshot, spools),
                _identity_reader(repo),
                lambda: ops.list_indexes(repo),
            )
            found, present, early = first[0], first[1], first[2]
            identity, index_sets = first[3], _parallel(
                *(_index_reader(repo, index_id) for index_id in first[4])
            )
        # Another repository behind the same name proves nothing about the real
        # backups: it is judged before anything is chosen or restored.
        if isinstance(identity, ops.ResticFailure):
            raise identity
        facts.update(repository_id=identity)
        unverified, replaced = identity_of(identity)
        if replaced:
            raise Stop(Status.CRITICAL, replaced)
        if unverified:
            facts.update(not_verified=((IDENTITY, unverified),))
        else:
            facts.update(verified=(IDENTITY,))
        damaged = reference.damaged_choice(found, options.snapshot)
        if damaged:
            raise Stop(Status.CRITICAL, damaged)
        snapshot = ops.choose_snapshot(found.snapshots, options.snapshot, now, rng)
        facts.update(snapshot_id=snapshot.id, snapshot_time=snapshot.time)
        if found.damaged:
            facts.update(notes=(*facts.outcome.notes, (
                f"{len(found.damaged)} other snapshot file(s) cannot be loaded: "
                + ", ".join(item[:8] for item in found.damaged[:3])
            )))
        referenced: set[str] = set()
        for packs in index_sets:
            referenced |= packs
        missing = sorted(referenced - present)
        if missing:
            shown = ", ".join(pack[:12] for pack in missing[:3])
            raise Stop(
                Status.CRITICAL,
                f"{len(missing)} pack file(s) referenced by the index are missing from "
                f"the repository: {shown}",
            )
        reader = local.reader if local is not None else None
        trees: Spool | None = None
        if reader is not None:
            # Trees read directly cost no restic start each: every folder's tree is
            # read, and they are the listing.
            if snapshot.tree is None:
                raise Stop(Status.CRITICAL, f"snapshot {snapshot.id[:8]} names no tree")
            tree_root: str | None = snapshot.tree
            listed = reference.read_trees(
                repo, snapshot.tree, spools.open(digests=False), local=reader
            )
            trees = listed
            budget = max(listed.folders, options.tree_budget)
        else:
            if early is None or early.snapshot is None or early.snapshot.id != snapshot.id:
                early = reference.list_nodes(repo, snapshot.id, spools.open())
            listed = early
            tree_root = snapshot.tree or (listed.snapshot.tree if listed.snapshot else None)
            budget = options.tree_budget
        folders = listed.folders
        use_trees = tree_root is not None and folders <= budget
        if use_trees and options.sample and tree_root is not None and trees is None:
            # The sample is drawn from the trees, so that its names are exact bytes.
            trees = _checked_trees(repo, tree_root, listed, spools.open(listed.key), None)
    base = trees if trees is not None else listed
    full_size = base.bytes
    facts.update(full_size_bytes=full_size)
    _compare_summary(snapshot, base.files, full_size, facts)
    if options.sample:
        sample = sorted(base.sample, key=lambda node: node.path)
        includes = [reference.include_pattern(node) for node in sample]
        needed = sum(node.size for node in sample)
        facts.update(files_expected=len(sample))
    else:
        sample, includes, needed = [], [], full_size
        facts.update(files_expected=base.files)
    adopted = speculation is not None and speculation.adopt(snapshot.id)
    if speculation is not None and adopted:
        scratch = speculation.scratch
        holder.append(scratch)
        # The free space before the early restore, less what the node lists took since.
        scratch_mod.check_space(settings.scratch_dir, needed, settings.reserve,
                                available=speculation.free_before - spools.size())
    else:
        scratch_mod.check_space(settings.scratch_dir, needed, settings.reserve)
        scratch = scratch_mod.create(settings.scratch_dir)
        holder.append(scratch)
    guard = reserve_guard(settings)
    stop_reading = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as background:
        tree_future = None
        if use_trees and trees is None and tree_root is not None:
            # The snapshot's trees do not depend on the restore: read them while restic
            # works.
            tree_future = background.submit(
                _checked_trees, repo, tree_root, listed, spools.open(listed.key),
                stop_reading, reader,
            )
        try:
            began_early: float | None = None
            with timer.phase("restore"), progress.watch("restore", needed, scratch.tree):
                try:
                    def restore() -> None:
                        with_lock_retry(
                            repo, now,
                            lambda: ops.call(
                                repo, reference.restore_args(snapshot.id, scratch.tree, includes),
                                stop_when=guard,
                            ),
                        )

                    if speculation is not None and adopted:
                        try:
                            speculation.finish()
                        except ops.ResticFailure as failure:
                            if failure.kind != ops.KIND_LOCKED:
                                raise
                            restore()  # a lock is waited for, or a stale one removed
                        else:
                            began_early = speculation.seconds
                    else:
                        restore()
                except ops.ResticFailure as failure:
                    if failure.kind == ops.KIND_NO_SPACE:
                        if failure.returncode is None:  # stopped at the reserve: killed
                            _remove_own_stale_lock(repo)
                        raise Stop(
                            Status.UNKNOWN, f"scratch disk full: {failure}"
                        ) from failure
                    facts.update(
                        mismatches=tuple(
                            Mismatch(path.encode("utf-8"), f"not restored: {reason}")
                            for path, reason in ops.parse_file_errors(failure.stderr)
                        )
                    )
                    raise
            if began_early is not None:
                timer.ran_for("restore", began_early)  # it began beside the list phase
            if tree_future is not None:
                with timer.phase("trees"):
                    trees = tree_future.result()
        except BaseException:
            # Stopping (a failure, SIGTERM): read no further trees.
            stop_reading.set()
            raise
    with timer.phase("verify"):
        if options.before_verify is not None:
            options.before_verify(scratch.tree)
        expected = trees if trees is not None else listed
        inexact = (sum(1 for node in sample if not node.exact) if options.sample
                   else expected.inexact)
        xattrs = trees is not None and keeps_xattrs(scratch.root)
        owner = os.geteuid() == 0
        coverage = coverage_of(
            trees=trees is not None, folders=folders, budget=budget,
            owner=owner, xattrs=xattrs, inexact=inexact,
        )
        facts.update(
            verified=(*coverage.verified, *facts.outcome.verified),
            not_verified=(*coverage.not_verified, *facts.outcome.not_verified),
        )
        groups = sample_groups(sample) if options.sample else expected.groups()
        with progress.phase("verify", needed) as advance:
            _verify(scratch, groups, bool(options.sample), facts, options,
                    owner=owner, xattrs=xattrs, advance=advance)
    if settings.read_data_subset:
        subset = ops.rotating_subset(settings.read_data_subset, now)
        with timer.phase("check"):
            try:
                with_lock_retry(repo, now, lambda: ops.check_subset(repo, subset))
            except ops.ResticFailure as failure:
                if failure.kind in (ops.KIND_LOCKED, ops.KIND_UNREACHABLE):
                    facts.update(notes=(*facts.outcome.notes, f"check skipped: {failure}"))
                else:
                    raise Stop(
                        Status.CRITICAL, f"restic check --read-data-subset {subset}: {failure}"
                    ) from failure
            else:
                facts.update(notes=(*facts.outcome.notes, f"read-data-subset {subset} clean"))
    return True


def _checked_trees(
    repo: Restic, root: str, listed: Spool, trees: Spool, stop: threading.Event | None,
    reader: LocalRepository | None = None,
) -> Spool:
    """Spool the snapshot's trees; raise Stop (CRITICAL) if they disagree with the listing."""
    reference.read_trees(
        repo, root, trees, should_stop=stop.is_set if stop else None, local=reader
    )
    problem = disagreement(listed, trees)
    if problem:
        raise Stop(Status.CRITICAL, problem)
    return trees


SUMMARY = "backup summary"


def _compare_summary(snapshot: ResticSnapshot, files: int, size: int, facts: Facts) -> None:
    """Compare the snapshot's files with the summary restic wrote when it was made.

    restic 0.17 and newer store the files and bytes a backup processed in the snapshot
    itself: an independent count of what the trees (or the listing) must hold. A
    difference is WARNING, naming both; for a snapshot made by `restic rewrite` (which
    before 0.18 kept its original's summary) it is a note. Older snapshots have no
    summary to compare.
    """
    summary = snapshot.summary or {}
    want_files = summary.get("total_files_processed")
    want_bytes = summary.get("total_bytes_processed")
    if not isinstance(want_files, int) or not isinstance(want_bytes, int):
        return  # nothing to compare with (restic before 0.17): not a property lost
    if (files, size) == (want_files, want_bytes):
        facts.update(verified=(*facts.outcome.verified, SUMMARY))
        return
    from durability.units import format_bytes

    text = (f"the snapshot holds {files} file(s), {format_bytes(size)}, but its backup "
            f"summary says {want_files}, {format_bytes(want_bytes)}")
    if snapshot.original is not None:
        facts.update(notes=(*facts.outcome.notes,
                            f"{text} (it was rewritten from {snapshot.original[:8]})"))
    else:
        facts.update(warnings=(*facts.outcome.warnings, text))


@dataclass(frozen=True)
class LocalMetadata:
    """A local repository read directly: its reader, its id and its index's packs."""

    reader: LocalRepository
    identity: str
    index_sets: list[set[str]]
    snapshot_set: reference.SnapshotSet


def _local_metadata(repo: Restic, folder: str) -> LocalMetadata | None:
    """Read a local repository's id and index directly, or return None to ask restic.

    Whatever this cannot read (restic could not open the repository, an unknown
    format, a file that fails authentication) is left to restic's own commands, which
    judge it as they always do.
    """
    try:
        reader = repo.local_reader(folder)
        identity = reader.repository_id()
        loaded, damaged = reader.snapshots()
        snapshots = sorted(parse_snapshots(json.dumps(loaded)), key=lambda item: item.time)
        index_sets = reader.load_index()
    except (ops.ResticFailure, Unsupported, Damaged) as error:
        log.info("%s not read directly (%s); restic reads it", folder, error)
        return None
    return LocalMetadata(
        reader, identity, index_sets, reference.SnapshotSet(tuple(snapshots), tuple(damaged))
    )


def _remove_own_stale_lock(repo: Restic) -> None:
    """Remove the lock of the restic this process just killed (stale: its PID is gone).

    `restic unlock` removes stale locks only, so a live holder's lock stays.
    """
    try:
        ops.unlock_stale(repo)
    except DurabilityError as error:
        log.warning("could not remove the stale lock of the interrupted restore: %s", error)


def _index_reader(repo: Restic, index_id: str) -> Callable[[], set[str]]:
    return lambda: ops.index_packs(repo, index_id)


def _parallel(*calls: Callable[[], Any]) -> list[Any]:
    """Run calls at once (each starts a restic); return their results in order."""
    if len(calls) <= 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=min(6, len(calls))) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result() for future in futures]


def _verify(
    scratch: scratch_mod.Scratch,
    groups: Iterable[Group],
    sample: bool,
    facts: Facts,
    options: Options,
    *,
    owner: bool,
    xattrs: bool,
    advance: Callable[[int], None],
) -> None:
    """Compare the restored tree with the snapshot, a folder at a time, and with live files.

    The content of each file was read back and checked against the snapshot's blob
    hashes by `restic restore --verify`; this compares everything else, and the content
    of files unchanged on this host since the snapshot with their live copies.
    """
    comparison = TreeComparison(allow_extra_dirs=sample, owner=owner, xattrs=xattrs)
    live = LiveComparer(options.live_root, scratch.tree, comparison.add, options.hash_workers)

    def verified(node: Node, path: bytes) -> None:
        live.offer(node, path)
        advance(node.size)

    comparison.on_verified = verified
    try:
        compare_groups(groups, scratch.tree, comparison, sample=sample)
        found = live.finish()
    finally:
        live.close()
    result = comparison.result()
    earlier = facts.outcome.mismatches
    mismatches = sorted((*earlier, *result.mismatches), key=lambda m: m.path)
    listed = mismatches[:MISMATCH_LIMIT]
    facts.update(
        files_restored=result.files_restored,
        bytes_restored=result.bytes_restored,
        files_verified=result.files_verified,
        mismatches=tuple(listed),
        mismatches_more=result.more + len(mismatches) - len(listed),
        changed_since=found.changed_since,
        changed_since_more=found.changed_more,
        live_compared=found.compared,
    )


def cleanup_scratch(
    holder: list[scratch_mod.Scratch], keep: bool, facts: Facts, timer: PhaseTimer
) -> None:
    """Remove the test's scratch folder (or mark it kept) and record how that went."""
    if not holder:
        return
    scratch = holder[0]
    with scratch_mod.shielded(), timer.phase("cleanup"):
        if keep:
            scratch_mod.keep(scratch)
            facts.update(cleanup="kept", kept_path=scratch.tree)
            return
        try:
            scratch_mod.remove_tree(scratch.root)
        except OSError as error:
            facts.update(cleanup=f"failed: {scratch.root}: {error.strerror or error}")
            log.warning("cannot remove scratch folder %s: %s", scratch.root, error)
        else:
            facts.update(cleanup="removed")


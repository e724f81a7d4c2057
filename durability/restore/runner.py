"""Gather: run one restore test of one source, always cleaning up its scratch folder.

The phases (list, restore, verify, cleanup) are timed; a failure stops the test and is
recorded in the `Outcome` as UNKNOWN (the test could not start, or the scratch disk
filled) or CRITICAL (the data is wrong). SIGTERM and SIGINT unwind through the same
`finally` that removes the scratch folder, then propagate.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from durability.config.restore import RestoreSettings
from durability.config.snapshots import SourceSettings
from durability.errors import DurabilityError
from durability.model import Status
from durability.restic import Restic
from durability.restore import resticops as ops
from durability.restore import scratch as scratch_mod
from durability.restore.outcome import Outcome, PhaseTimer
from durability.restore.progress import Progress, QuietProgress
from durability.restore.verify import (
    Mismatch,
    compare_tree,
    find_live_files,
    hash_files,
    judge_live,
    walk_tree,
)

log = logging.getLogger(__name__)

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


class Stop(Exception):
    """The test cannot go on; `status` says how to judge that."""

    def __init__(self, status: Status, reason: str) -> None:
        self.status = status
        super().__init__(reason)


@dataclass
class Facts:
    """The facts of a test as they come in (frozen into an `Outcome` at the end)."""

    outcome: Outcome
    restored_hashes: dict[str, str] = field(default_factory=dict)

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
) -> Outcome:
    """Given a restic source, restore one snapshot into scratch, verify it, clean up.

    Return the facts; raise Terminated or KeyboardInterrupt (after cleaning up) if
    the process is told to stop.
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
                begun = _restic_phases(
                    repo, settings, options, now, progress, facts, timer, holder
                )
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
    facts.update(seconds=tuple(timer.seconds.items()))
    return facts.outcome


def _restic_phases(
    repo: Restic,
    settings: RestoreSettings,
    options: Options,
    now: datetime,
    progress: Progress,
    facts: Facts,
    timer: PhaseTimer,
    holder: list[scratch_mod.Scratch],
) -> bool:
    rng: random.Random = random.SystemRandom()
    if options.seed is not None:  # tests fix the choice; it protects nothing
        rng = random.Random(options.seed)  # noqa: S311
    with timer.phase("list"):
        # restic retries a missing pack for most of a minute before giving up, so the
        # index is checked against the pack files before anything reads a pack.
        # A local repository is listed without restic, so its index files are read
        # alongside the snapshot listing; elsewhere the listing takes a round of its own.
        indexes = ops.list_indexes(repo) if ops.local_folder(repo.repository) else None
        first = _parallel(
            lambda: with_lock_retry(repo, now, lambda: ops.list_snapshots(repo)),
            lambda: ops.list_packs(repo),
            *(
                [_index_reader(repo, index_id) for index_id in indexes]
                if indexes is not None else [lambda: ops.list_indexes(repo)]
            ),
        )
        snapshots, present = first[0], first[1]
        if indexes is not None:
            index_sets = first[2:]
        else:
            index_sets = _parallel(*(_index_reader(repo, index_id) for index_id in first[2]))
        snapshot = ops.choose_snapshot(snapshots, options.snapshot, now, rng)
        facts.update(snapshot_id=snapshot.id, snapshot_time=snapshot.time)
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
        nodes = ops.list_nodes(repo, snapshot.id)
    files = [node for node in nodes if node.type == "file"]
    full_size = sum(node.size for node in files)
    facts.update(full_size_bytes=full_size)
    if options.sample:
        expected = rng.sample(files, min(options.sample, len(files)))
        includes = [node.path for node in expected]
    else:
        expected, includes = nodes, []
    expected_files = [node for node in expected if node.type == "file"]
    needed = sum(node.size for node in expected_files)
    facts.update(files_expected=len(expected_files))
    scratch_mod.check_space(settings.scratch_dir, needed, settings.reserve)
    scratch = scratch_mod.create(settings.scratch_dir)
    holder.append(scratch)
    # The live files do not depend on the restore: hash them while restic works.
    live = find_live_files(expected_files, options.live_root)
    stop_hashing = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as background:
        live_hashes = background.submit(
            hash_files, [path for _node, path in live.unchanged], options.hash_workers,
            None, stop_hashing,
        )
        try:
            with timer.phase("restore"), progress.watch("restore", needed, scratch.tree):
                try:
                    with_lock_retry(
                        repo, now, lambda: ops.restore(repo, snapshot.id, scratch.tree, includes)
                    )
                except ops.ResticFailure as failure:
                    if failure.kind == ops.KIND_NO_SPACE:
                        raise Stop(
                            Status.UNKNOWN, f"scratch disk full: {failure}"
                        ) from failure
                    facts.update(
                        mismatches=tuple(
                            Mismatch(path, f"not restored: {reason}")
                            for path, reason in ops.parse_file_errors(failure.stderr)
                        )
                    )
                    raise
        except BaseException:
            # Stopping (a failure, SIGTERM): do not wait for the live files' hashes.
            stop_hashing.set()
            raise
        with timer.phase("verify"):
            _verify(scratch, expected, bool(options.sample), options, progress, facts)
            comparison = judge_live(live, live_hashes.result(), facts.restored_hashes)
            facts.update(
                mismatches=tuple(
                    sorted((*facts.outcome.mismatches, *comparison.mismatches),
                           key=lambda m: m.path)
                ),
                changed_since=comparison.changed_since,
                live_compared=comparison.compared,
            )
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
    expected: list[ops.Node],
    sample: bool,
    options: Options,
    progress: Progress,
    facts: Facts,
) -> None:
    restored = walk_tree(scratch.tree)
    mismatches = compare_tree(expected, restored, allow_extra_dirs=sample)
    files = [
        node for node in expected
        if node.type == "file" and node.path in restored and restored[node.path].type == "file"
    ]
    total = sum(restored[node.path].size for node in files)
    with progress.phase("verify", total) as advance:
        hashed = hash_files(
            [scratch.tree + node.path for node in files],
            workers=options.hash_workers,
            progress=advance,
        )
    hashes: dict[str, str] = {}
    for node, item in zip(files, hashed, strict=True):
        if item.sha256 is None:
            mismatches.append(Mismatch(node.path, f"read error: {item.error}"))
        else:
            hashes[node.path] = item.sha256
    facts.restored_hashes = hashes
    facts.update(
        files_restored=len(files),
        bytes_restored=total,
        files_verified=len(hashes),
        mismatches=tuple(sorted(mismatches, key=lambda m: m.path)),
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


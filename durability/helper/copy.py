"""`durability-helper copy`: back up to every enrolled disk present, verify, keep a receipt.

For each enrolled disk that is mounted: `restic backup` of the chosen paths, then a
check that reads back one rotating part of the data (`check --read-data-subset=K/N`),
then a restore of a random sample of files compared with the source. Only a copy that
passed all of that, on a disk that stayed mounted throughout, gets a receipt.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from durability.errors import ParseError
from durability.helper import disks
from durability.helper.folder import DiskRecord, Folder, HelperError, HelperState
from durability.helper.guard import StallGuard
from durability.helper.i18n import _, format_bytes, ngettext
from durability.helper.notify import Progress
from durability.helper.receipts import Receipt, disk_hash, save_receipt
from durability.helper.repo import (
    TAG,
    FileNode,
    HelperRestic,
    choose_sample,
    disk_full_message,
    explain,
    free_bytes,
    include_pattern,
    make_restic,
    next_subset,
    parse_backup_summary,
    parse_ls_files,
    parse_ls_snapshot_id,
    read_only_message,
    sha256_file,
    tree_size,
)
from durability.restic import ResticError

log = logging.getLogger(__name__)

# How long a restic run may show no CPU and no I/O before it is stopped.
STUCK_AFTER = 120.0


class VerifyError(HelperError):
    """The copy was written but reading it back failed: the disk is not to be trusted."""


@dataclass(frozen=True)
class CopyOptions:
    """How `copy` runs; tests point the roots and the random source elsewhere."""

    restic_binary: str = "restic"
    cache_dir: str | None = None
    scratch_dir: str | None = None
    subsets: int = 10
    sample_files: int = 20
    sample_bytes: int = 256 * 1024 * 1024
    seed: int | None = None
    wait_seconds: float = 0.0
    stuck_after: float | None = None
    proc_root: str = "/proc"
    sys_root: str = "/sys"
    use_udev: bool | None = None


@dataclass(frozen=True)
class DiskOutcome:
    """What happened on one disk: a receipt, or the error that prevented one."""

    disk: str
    receipt: Receipt | None = None
    error: str = ""


@dataclass(frozen=True)
class CopyOutcome:
    """What `copy` did on every enrolled disk."""

    disks: tuple[DiskOutcome, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Return True if every present disk got a verified copy."""
        return bool(self.disks) and all(d.receipt is not None for d in self.disks)


def resolve_paths(paths: Sequence[str]) -> list[str]:
    """Return the absolute paths to copy. Raise HelperError if one does not exist."""
    resolved = []
    for path in paths:
        absolute = os.path.abspath(os.path.expanduser(path))
        if not os.path.exists(absolute):
            raise HelperError(_("{path} does not exist").format(path=path))
        if not os.access(absolute, os.R_OK):
            raise HelperError(_("{path} cannot be read").format(path=path))
        resolved.append(absolute)
    return resolved


def isoformat(moment: datetime) -> str:
    """Return an aware datetime as ISO-8601 UTC with a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def find_present(
    state: HelperState, options: CopyOptions, progress: Progress
) -> tuple[list[disks.Present], list[str]]:
    """Return the enrolled disks mounted now (waiting up to options.wait_seconds) and notes."""
    enrolled = [(d.disk_id, d.fs_uuid) for d in state.disks]
    deadline = time.monotonic() + options.wait_seconds
    while True:
        try:
            present, notes = disks.find_enrolled(
                enrolled, options.proc_root, options.sys_root, use_udev=options.use_udev
            )
        except (OSError, ParseError) as error:
            raise HelperError(_("cannot list the mounted disks: {error}").format(
                error=error)) from error
        if present or time.monotonic() >= deadline:
            return present, notes
        progress.step(_("waiting for an enrolled disk to be plugged in…"))
        time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))


def run_copy(
    paths: Sequence[str],
    folder: Folder,
    now: datetime,
    options: CopyOptions,
    progress: Progress,
) -> CopyOutcome:
    """Copy `paths` to every enrolled disk present, verify each copy, keep receipts.

    Raise HelperError if nothing could be attempted (no disk enrolled or present, a
    path missing); per-disk failures are in the outcome.
    """
    state = folder.load()
    if not state.disks:
        raise HelperError(_("no disk is enrolled yet: run "
                            "`durability-helper enroll MOUNTPOINT`"))
    sources = resolve_paths(paths)
    present, notes = find_present(state, options, progress)
    if not present:
        names = ", ".join(d.name for d in state.disks)
        raise HelperError(
            _("none of your enrolled disks is plugged in (enrolled: {names})").format(
                names=names)
            + "".join(f"; {note}" for note in notes)
        )
    present_ids = {p.disk_id for p in present}
    for record in state.disks:
        if record.disk_id not in present_ids:
            notes.append(_("disk {disk} is not plugged in: skipped").format(disk=record.name))
    # Sampling is not cryptography; a seed makes tests repeatable.
    rng = random.SystemRandom() if options.seed is None else random.Random(options.seed)  # noqa: S311
    outcomes = []
    for disk in present:
        found = state.disk(disk.disk_id)
        assert found is not None  # find_enrolled only returns enrolled ids
        record = found
        try:
            receipt, record = copy_to_disk(disk, record, sources, folder, now, options, rng,
                                           progress)
        except HelperError as error:
            message = str(error)
            if not disks.still_mounted(disk, options.proc_root):
                message = removed_message(record.name)
            elif isinstance(error, VerifyError):
                record = replace(
                    record, last_verified_at=isoformat(datetime.now(UTC)), last_verified_ok=False
                )
            record = replace(record, last_error=message)
            outcomes.append(DiskOutcome(record.name, None, message))
        else:
            save_receipt(folder.path, receipt)
            outcomes.append(DiskOutcome(record.name, receipt))
        state = state.with_disk(record)
        folder.save(state)
    return CopyOutcome(tuple(outcomes), tuple(notes))


def copy_to_disk(
    disk: disks.Present,
    record: DiskRecord,
    sources: Sequence[str],
    folder: Folder,
    now: datetime,
    options: CopyOptions,
    rng: random.Random,
    progress: Progress,
) -> tuple[Receipt, DiskRecord]:
    """Back up, verify and return the receipt and updated record of one disk.

    Raise HelperError with the customer-facing reason if anything fails.
    """
    name = record.name
    mountpoint = disk.volume.mountpoint
    if disk.volume.read_only:
        raise HelperError(read_only_message(name))
    shown_repository = str(Path(mountpoint, disk.marker.repository))
    password_file = "" if record.password_command else str(folder.key_path(record.disk_id))
    if password_file and not os.path.exists(password_file):
        raise HelperError(_(
            "disk {disk}: its password file {file} is missing; restore it from your copy of "
            "the password").format(disk=name, file=password_file))
    if password_file:
        from durability.secrets import check_secret_file

        problem = check_secret_file(password_file, "disk password file")
        if problem:
            log.debug("%s", problem)
            raise HelperError(_(
                "disk {disk}: its password file {file} cannot be used: it must be a regular "
                "file that other users cannot read (run `chmod 600 {file}`)").format(
                    disk=name, file=password_file))
    try:
        fd, repository = disks.open_pinned(disk, disk.marker.repository)
    except OSError as error:
        raise HelperError(_("disk {disk}: cannot open its backup folder {folder}: {error}")
                          .format(disk=name, folder=shown_repository,
                                  error=error.strerror or error)) from error
    stuck_after = options.stuck_after if options.stuck_after is not None else STUCK_AFTER
    try:
        with StallGuard(options.restic_binary, stuck_after) as guard:
            try:
                return _copy_pinned(
                    disk, record, sources, repository, shown_repository, password_file, now,
                    options, rng, progress, folder,
                )
            except HelperError as error:
                if not guard.stopped:
                    raise
                # restic hung; on a disk too small for the copy that is a full disk.
                free = free_bytes(mountpoint)
                _files, needed = tree_size(sources)
                if free is not None and free < needed:
                    cleaned = tidy_unfinished(make_restic(
                        repository, password_file, record.password_command,
                        binary=options.restic_binary, cache_dir=options.cache_dir))
                    raise HelperError(disk_full_message(
                        name, needed, free_bytes(mountpoint), cleaned)) from error
                raise HelperError(_(
                    "disk {disk}: restic made no progress for {seconds} s and was stopped; "
                    "check the disk (is it failing?) and retry").format(
                        disk=name, seconds=f"{stuck_after:.0f}")) from error
    finally:
        os.close(fd)


def _copy_pinned(
    disk: disks.Present,
    record: DiskRecord,
    sources: Sequence[str],
    repository: str,
    shown_repository: str,
    password_file: str,
    now: datetime,
    options: CopyOptions,
    rng: random.Random,
    progress: Progress,
    folder: Folder,
) -> tuple[Receipt, DiskRecord]:
    name = record.name
    mountpoint = disk.volume.mountpoint
    password_source = _("the password command") if record.password_command else password_file
    restic = make_restic(
        repository, password_file, record.password_command,
        binary=options.restic_binary, cache_dir=options.cache_dir,
    )
    _files, needed = tree_size(sources)
    progress.step(_("disk {disk}: copying {size}…").format(disk=name, size=format_bytes(needed)))
    try:
        with progress.watch(_("disk {disk}").format(disk=name), mountpoint, needed,
                            options.restic_binary):
            done = restic.run(["backup", "--json", "--tag", TAG, *sources])
    except ResticError as error:
        if error.returncode == 3:
            raise HelperError(_(
                "disk {disk}: some files could not be read, so the copy is incomplete "
                "(run with -v to see which)").format(disk=name)) from error
        if is_disk_full(error):
            cleaned = tidy_unfinished(restic)
            raise HelperError(disk_full_message(name, needed, free_bytes(mountpoint),
                                                cleaned)) from error
        raise HelperError(
            explain(error, name, needed=needed, free=free_bytes(mountpoint),
                    password_source=password_source)
        ) from error
    try:
        summary = parse_backup_summary(done.stdout)
    except ValueError as error:
        raise HelperError(_("disk {disk}: the new copy cannot be found: {error}").format(
            disk=name, error=error)) from error
    try:
        listing = restic.run(["ls", "--json", summary.snapshot_id])
    except ResticError as error:
        _require_mounted(disk, options, name)
        raise VerifyError(_(
            "disk {disk}: verification failed, the new copy cannot be listed ({error})").format(
                disk=name, error=error)) from error
    # restic 0.14 reports a short id; the receipt carries the full one.
    try:
        full_id = parse_ls_snapshot_id(listing.stdout)
        files = parse_ls_files(listing.stdout)
    except ParseError as error:
        raise VerifyError(_(
            "disk {disk}: verification failed, the list of files of the new copy cannot be "
            "read ({error})").format(disk=name, error=error)) from error
    summary = replace(summary, snapshot_id=full_id or summary.snapshot_id)
    _require_mounted(disk, options, name)
    record = replace(record, last_copy_at=isoformat(now), last_snapshot_id=summary.snapshot_id)

    subset = max(1, min(record.next_subset, options.subsets))
    progress.step(_("disk {disk}: reading back part {part} of {parts}…").format(
        disk=name, part=subset, parts=options.subsets))
    try:
        restic.run(["check", f"--read-data-subset={subset}/{options.subsets}"])
    except ResticError as error:
        _require_mounted(disk, options, name)
        raise VerifyError(_(
            "disk {disk}: verification failed, the backup on this disk is damaged ({error}); "
            "run `restic -r {folder} check` and consider a new disk").format(
                disk=name, error=error, folder=shown_repository)) from error
    progress.step(_("disk {disk}: restoring sample files to compare with the originals…")
                  .format(disk=name))
    checked = verify_sample(restic, summary.snapshot_id, files, options, rng, name, folder)
    _require_mounted(disk, options, name)
    log.info("%s", ngettext("disk {disk}: {count} sample file matched its original",
                            "disk {disk}: {count} sample files matched their originals",
                            checked).format(disk=name, count=checked))
    receipt = Receipt(
        time=isoformat(now),
        snapshot_id=summary.snapshot_id,
        files=summary.files,
        bytes=summary.bytes,
        verified=True,
        disk=disk_hash(record.disk_id),
    )
    record = replace(
        record,
        last_verified_at=isoformat(datetime.now(UTC)),
        last_verified_ok=True,
        last_error="",
        next_subset=next_subset(subset, options.subsets),
    )
    return receipt, record


def removed_message(name: str) -> str:
    """Return the message for a disk that went away during the copy."""
    return _("disk {disk} was removed or unmounted during the copy: plug it in again and "
             "rerun copy (no receipt was written)").format(disk=name)


def is_disk_full(error: ResticError) -> bool:
    """Return True if a restic failure says the disk is full."""
    lowered = str(error).lower()
    return "no space left" in lowered or "disk quota" in lowered


def tidy_unfinished(restic: HelperRestic) -> bool:
    """Remove what an unfinished copy left on a full disk; return True if that worked.

    A copy that ran out of room leaves pack files that no snapshot uses. `prune` with
    `--max-unused unlimited` deletes only such wholly unused packs (it never rewrites
    data, which a full disk could not take); `unlock` first clears the lock of a restic
    that had to be stopped.
    """
    try:
        restic.run(["unlock"])
        restic.run(["prune", "--max-unused", "unlimited"])
    except ResticError as error:
        log.info("%s", _("the unfinished copy could not be removed: {error}").format(error=error))
        return False
    return True


def _require_mounted(disk: disks.Present, options: CopyOptions, name: str) -> None:
    if not disks.still_mounted(disk, options.proc_root):
        raise HelperError(removed_message(name))


def verify_sample(
    restic: HelperRestic,
    snapshot_id: str,
    files: Sequence[FileNode],
    options: CopyOptions,
    rng: random.Random,
    name: str,
    folder: Folder,
) -> int:
    """Restore a random sample of the snapshot's files and compare them with the source.

    A source file changed since the copy (other size or time) is compared by size with
    what the snapshot recorded. Return the number of files compared; raise VerifyError
    on any difference or restore error.
    """
    sample = choose_sample(files, options.sample_files, options.sample_bytes, rng)
    if not sample:
        return 0
    # The sample is the customer's data: restore it into a private folder (mkdtemp
    # makes it 0700) on this computer, never on the disk being verified.
    scratch_parent = Path(options.scratch_dir or folder.path)
    scratch_parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    scratch = tempfile.mkdtemp(prefix="verify-", dir=scratch_parent)
    try:
        args = ["restore", snapshot_id, "--target", scratch, "--verify"]
        for node in sample:
            args += ["--include", include_pattern(node.path)]
        try:
            restic.run(args)
        except ResticError as error:
            raise VerifyError(_(
                "disk {disk}: verification failed, files could not be read back from the "
                "disk ({error})").format(disk=name, error=error)) from error
        differing = sum(1 for node in sample if not _same(node, Path(scratch + node.path)))
        if differing:
            raise VerifyError(ngettext(
                "disk {disk}: verification failed: {count} of {total} sample file came back "
                "different from the original",
                "disk {disk}: verification failed: {count} of {total} sample files came back "
                "different from the originals", len(sample)).format(
                    disk=name, count=differing, total=len(sample)))
        return len(sample)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _same(node: FileNode, restored: Path) -> bool:
    """Return True if a restored file matches its source (or, if the source changed, the
    size the snapshot recorded)."""
    try:
        got = restored.stat()
    except OSError:
        return False
    if got.st_size != node.size:
        return False
    try:
        source = os.stat(node.path)
    except OSError:
        return True  # the source is gone; restic --verify compared the content already
    unchanged = source.st_size == node.size and (
        node.mtime is None
        or abs(source.st_mtime - node.mtime.timestamp()) < 1e-3
    )
    if not unchanged:
        return True
    return sha256_file(restored) == sha256_file(Path(node.path))


__all__ = [
    "CopyOptions", "CopyOutcome", "DiskOutcome", "VerifyError", "disk_full_message", "run_copy",
]

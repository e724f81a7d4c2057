"""`durability-helper enroll MOUNTPOINT`: make an external disk a backup disk.

Checks first, writes last: the mount point must be the root of a mounted, writable
block-device filesystem with a readable UUID and no foreign backup on it. Then it writes
the marker, creates the encrypted restic repository, and records the disk. If creating
the repository fails, what this run wrote on the disk is removed again.
"""

from __future__ import annotations

import errno
import os
import secrets
import shlex
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from durability.errors import CommandError, ParseError
from durability.execute import run
from durability.helper import disks
from durability.helper.folder import DiskRecord, Folder, HelperError
from durability.helper.i18n import _
from durability.helper.repo import explain, make_restic, read_only_message
from durability.restic import ResticError

REPOSITORY_DIR = "durability-backup"


@dataclass(frozen=True)
class Enrolled:
    """The outcome of a successful enroll."""

    record: DiskRecord
    mountpoint: str
    repository: str
    password_file: str


def check_password_command(command: str) -> None:
    """Run a password command once and make sure it prints a password. Raise HelperError."""
    try:
        argv = shlex.split(command)
    except ValueError as error:
        raise HelperError(_("cannot read the password command: {error}")
                          .format(error=error)) from error
    if not argv:
        raise HelperError(_("the password command is empty"))
    try:
        done = run(argv, timeout=120)
    except CommandError as error:
        raise HelperError(_("the password command failed: {error}").format(error=error)) from error
    if done.returncode != 0:
        raise HelperError(_("the password command failed with exit code {code}")
                          .format(code=done.returncode))
    if not done.stdout.strip():
        raise HelperError(_("the password command printed no password"))


def run_enroll(
    mountpoint: str,
    folder: Folder,
    now: datetime,
    *,
    password_command: str = "",
    restic_binary: str = "restic",
    cache_dir: str | None = None,
    proc_root: str = "/proc",
    sys_root: str = "/sys",
    use_udev: bool | None = None,
) -> Enrolled:
    """Given a mount point, enroll the disk mounted there and return what was done.

    Raise HelperError (nothing left on the disk) if it cannot be enrolled.
    """
    real = os.path.realpath(mountpoint)
    if not os.path.isdir(real):
        raise HelperError(_("{path} is not a folder").format(path=mountpoint))
    try:
        mounts = disks.read_mountinfo(proc_root)
    except (OSError, ParseError) as error:
        raise HelperError(_("cannot list the mounted disks: {error}")
                          .format(error=error)) from error
    entry = disks.mount_at(real, mounts)
    if entry is None:
        raise HelperError(_(
            "{path} is not where a disk is mounted: give the folder the disk appears in "
            "(for example /media/you/BACKUP)").format(path=mountpoint))
    if real == "/" or not entry.source.startswith("/dev/"):
        raise HelperError(_("{path} is not an external disk ({device}, {fstype})").format(
            path=mountpoint, device=entry.source, fstype=entry.fstype))
    volume = disks.describe(entry, use_udev=use_udev, sys_root=sys_root)
    if volume.read_only:
        raise HelperError(read_only_message(real))
    if not volume.fs_uuid:
        raise HelperError(_(
            "cannot read the filesystem UUID of {device}: run enroll as root (sudo) or where "
            "udev runs").format(device=volume.device))
    state = folder.load()
    marker = disks.read_marker(real)
    if marker is not None:
        known = state.disk(marker.disk_id)
        if known is not None:
            raise HelperError(_("{path} is already enrolled (disk {disk})")
                              .format(path=mountpoint, disk=known.name))
        raise HelperError(_(
            "{path} was enrolled by another user or computer: it is left untouched")
            .format(path=mountpoint))
    repository = Path(real, REPOSITORY_DIR)
    if repository.exists():
        raise HelperError(_("{path} already exists: it is left untouched").format(path=repository))
    same = [d for d in state.disks if d.fs_uuid == volume.fs_uuid]
    if same:
        raise HelperError(_(
            "a disk with filesystem UUID {uuid} is already enrolled ({disk})")
            .format(uuid=volume.fs_uuid, disk=same[0].name))

    folder.ensure()
    disk_id = secrets.token_hex(16)
    if password_command:
        check_password_command(password_command)
        password_file = ""
    else:
        password_file = str(folder.new_password(disk_id))
    marker_path = Path(real, disks.MARKER_NAME)
    enrolled_at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    new_marker = disks.Marker(disk_id=disk_id, repository=REPOSITORY_DIR, enrolled_at=enrolled_at)
    name = volume.label or volume.fs_uuid
    try:
        disks.write_marker(real, new_marker)
    except OSError as error:
        _forget_key(folder, disk_id)
        if error.errno == errno.EROFS:
            raise HelperError(read_only_message(name)) from error
        raise HelperError(_("cannot write to {path}: {error}")
                          .format(path=real, error=error.strerror)) from error
    restic = make_restic(
        str(repository), password_file, password_command,
        binary=restic_binary, cache_dir=cache_dir,
    )
    try:
        restic.run(["init"])
    except ResticError as error:
        shutil.rmtree(repository, ignore_errors=True)
        marker_path.unlink(missing_ok=True)
        _forget_key(folder, disk_id)
        raise HelperError(explain(error, name, needed=None)) from error
    record = DiskRecord(
        disk_id=disk_id,
        fs_uuid=volume.fs_uuid,
        label=volume.label,
        enrolled_at=enrolled_at,
        repository=REPOSITORY_DIR,
        password_command=password_command,
    )
    folder.save(state.with_disk(record))
    return Enrolled(record, real, str(repository), password_file)


def _forget_key(folder: Folder, disk_id: str) -> None:
    folder.key_path(disk_id).unlink(missing_ok=True)


def recovery_text(enrolled: Enrolled) -> str:
    """Return the instructions to get the data back with plain restic, without the helper."""
    repo = shlex.quote(enrolled.repository)
    if enrolled.record.password_command:
        password = f"--password-command {shlex.quote(enrolled.record.password_command)}"
        keep = _("Your password comes from your password command; keep it working.")
    else:
        password = f"--password-file {shlex.quote(enrolled.password_file)}"
        keep = _(
            "The password is in {file}. Keep a copy of that file (or its\n"
            "one line) somewhere other than this computer, for example in your password\n"
            "manager: without it nobody, not even your provider, can read the disk."
        ).format(file=enrolled.password_file)
    return _(
        "Enrolled {path} (disk {disk}).\n"
        "{keep}\n\n"
        "To recover your data without durability-helper (restic only):\n"
        "  {snapshots}\n"
        "  {restore}\n"
        "Next: durability-helper copy FOLDER...\n"
    ).format(path=enrolled.mountpoint, disk=enrolled.record.name, keep=keep,
             snapshots=f"restic -r {repo} {password} snapshots",
             restore=f"restic -r {repo} {password} restore latest --target "
                     + _("~/restored"))

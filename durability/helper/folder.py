"""The helper's folder: enrolled disks, their passwords, receipts and the pending queue.

Everything lives in `$XDG_CONFIG_HOME/durability-helper` (mode 0700). `helper.json`
holds the settings and the enrolled disks; `keys/DISK_ID` each hold one disk's restic
password (mode 0600); `receipts/` keeps every receipt; `pending/` holds receipts waiting
to be sent to the provider. Every file is written atomically.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from durability.errors import DurabilityError
from durability.helper.i18n import _

FOLDER_NAME = "durability-helper"
STATE_FILE = "helper.json"
STATE_VERSION = 1


class HelperError(DurabilityError):
    """A helper operation failed; the message is one line the customer can act on."""


@dataclass(frozen=True)
class DiskRecord:
    """One enrolled disk and what the helper last did with it."""

    disk_id: str
    fs_uuid: str
    label: str = ""
    enrolled_at: str = ""
    repository: str = "durability-backup"
    password_command: str = ""
    last_copy_at: str = ""
    last_snapshot_id: str = ""
    last_verified_at: str = ""
    last_verified_ok: bool | None = None
    last_error: str = ""
    next_subset: int = 1

    @property
    def name(self) -> str:
        """Return how the customer sees this disk: its label, else its UUID."""
        return self.label or self.fs_uuid or self.disk_id[:8]


@dataclass(frozen=True)
class HelperState:
    """The contents of helper.json."""

    disks: tuple[DiskRecord, ...] = ()
    paths: tuple[str, ...] = ()
    confirm_url: str = ""

    def disk(self, disk_id: str) -> DiskRecord | None:
        """Return the enrolled disk with this id, or None."""
        return next((d for d in self.disks if d.disk_id == disk_id), None)

    def with_disk(self, record: DiskRecord) -> HelperState:
        """Return a state where `record` replaces (or adds) the disk with its id."""
        if self.disk(record.disk_id) is None:
            return replace(self, disks=(*self.disks, record))
        return replace(
            self,
            disks=tuple(record if d.disk_id == record.disk_id else d for d in self.disks),
        )


def default_folder(environ: dict[str, str] | None = None) -> Path:
    """Given the environment, return the helper's folder ($XDG_CONFIG_HOME/durability-helper)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / FOLDER_NAME


def default_cache(environ: dict[str, str] | None = None) -> Path:
    """Given the environment, return the helper's cache folder (restic's cache lives there)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / FOLDER_NAME


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write text to path atomically with the given mode (the file never exists wider)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class Folder:
    """The helper's folder on disk. Methods raise HelperError with the path on failure."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def ensure(self) -> None:
        """Create the folder (mode 0700), or tighten an existing one to 0700."""
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
            if self.path.stat().st_mode & 0o077:
                os.chmod(self.path, 0o700)
            for sub in ("keys", "receipts", "pending"):
                (self.path / sub).mkdir(exist_ok=True, mode=0o700)
        except OSError as error:
            raise HelperError(_("cannot create {path}: {error}").format(
                path=self.path, error=error.strerror)) from error

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's lock, so that two copies never run at once."""
        self.ensure()
        lock_path = self.path / "lock"
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "r+", encoding="utf-8") as stream:
            try:
                fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as error:
                raise HelperError(_(
                    "another durability-helper is already running for this user; "
                    "try again when it has finished")) from error
            try:
                yield
            finally:
                fcntl.flock(stream.fileno(), fcntl.LOCK_UN)

    def load(self) -> HelperState:
        """Return the saved state (an empty one before the first enroll)."""
        path = self.path / STATE_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return HelperState()
        except (OSError, ValueError) as error:
            raise HelperError(_("cannot read {path}: {error}")
                              .format(path=path, error=error)) from error
        try:
            return parse_state(raw)
        except (TypeError, ValueError, KeyError) as error:
            raise HelperError(_("{path} is damaged: {error}")
                              .format(path=path, error=error)) from error

    def save(self, state: HelperState) -> None:
        """Write the state atomically."""
        self.ensure()
        try:
            write_private(self.path / STATE_FILE, render_state(state))
        except OSError as error:
            raise HelperError(_("cannot write {path}: {error}").format(
                path=self.path / STATE_FILE, error=error.strerror)) from error

    def key_path(self, disk_id: str) -> Path:
        """Return the password file of one disk."""
        return self.path / "keys" / disk_id

    def new_password(self, disk_id: str) -> Path:
        """Create a random password for a disk (mode 0600) and return its file."""
        self.ensure()
        path = self.key_path(disk_id)
        write_private(path, secrets.token_urlsafe(32) + "\n")
        return path


def parse_state(raw: Any) -> HelperState:
    """Given the decoded JSON of helper.json, return the state. Raise ValueError if odd."""
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    if raw.get("version") != STATE_VERSION:
        raise ValueError(f"unknown version {raw.get('version')!r}")
    known = set(DiskRecord.__dataclass_fields__)
    disks = tuple(
        DiskRecord(**{k: v for k, v in item.items() if k in known}) for item in raw.get("disks", [])
    )
    return HelperState(
        disks=disks,
        paths=tuple(str(p) for p in raw.get("paths", [])),
        confirm_url=str(raw.get("confirm_url", "")),
    )


def render_state(state: HelperState) -> str:
    """Return the JSON text of helper.json for a state."""
    body: dict[str, Any] = {
        "version": STATE_VERSION,
        "paths": list(state.paths),
        "confirm_url": state.confirm_url,
        "disks": [asdict(d) for d in state.disks],
    }
    return json.dumps(body, indent=2, sort_keys=True) + "\n"


__all__ = [
    "DiskRecord",
    "Folder",
    "HelperError",
    "HelperState",
    "default_cache",
    "default_folder",
    "parse_state",
    "render_state",
    "write_private",
]

"""The shared restic wrapper: every restic call of durability goes through `Restic`.

The password only ever travels as `RESTIC_PASSWORD_FILE`; stdin is /dev/null so restic
never waits at a prompt; every call goes through `durability.execute.run`. Failures
become `ResticError` with a `kind` an operator can act on, classified from the exit
code on restic 0.17 and newer (10 no repository, 11 locked, 12 wrong password) and from
stderr on older versions, where every failure is exit 1.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from durability.errors import CommandError, DurabilityError
from durability.execute import Completed, run

ERROR_KINDS = ("wrong-password", "no-repository", "locked", "not-found", "other")

# Exit codes of restic 0.17 and newer.
_EXIT_KINDS = {10: "no-repository", 11: "locked", 12: "wrong-password"}

# stderr patterns of restic 0.14 (and of any version, as a fallback).
_STDERR_KINDS = (
    ("wrong-password", re.compile(r"wrong password|no key found", re.I)),
    ("locked", re.compile(r"repository is already locked|unable to create lock", re.I)),
    (
        "no-repository",
        re.compile(
            r"Is there a repository at the following location|unable to open config file"
            r"|repository does not exist|The specified bucket does not exist|NoSuchBucket",
            re.I,
        ),
    ),
    (
        "not-found",
        re.compile(r"no matching ID found|no snapshot found|snapshot .* not found", re.I),
    ),
)

_SECRET_ENV = re.compile(r"SECRET|PASSWORD|TOKEN|KEY$", re.I)

DEFAULT_TIMEOUT = 3600.0


class ResticError(DurabilityError):
    """A restic call failed; `kind` is one of ERROR_KINDS. The message holds no secret."""

    def __init__(self, message: str, kind: str = "other", returncode: int | None = None) -> None:
        self.kind = kind
        self.returncode = returncode
        super().__init__(message)


@dataclass(frozen=True)
class ResticSnapshot:
    """One snapshot as `restic snapshots --json` lists it."""

    id: str
    short_id: str
    time: datetime
    hostname: str
    paths: tuple[str, ...]
    tags: tuple[str, ...] = ()
    username: str = ""
    parent: str | None = None
    tree: str | None = None
    # The `summary` block exists only from restic 0.17 on.
    summary: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ResticStats:
    """What `restic stats --json` reports."""

    total_size: int
    total_file_count: int
    snapshots_count: int | None = None


@dataclass(frozen=True)
class ResticLock:
    """One lock in the repository: who holds it and since when."""

    id: str
    time: datetime
    exclusive: bool
    hostname: str
    username: str
    pid: int | None


def parse_version(text: str) -> tuple[int, int, int]:
    """Given `restic version` output, return (major, minor, patch). Raise ResticError."""
    match = re.search(r"restic\s+v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if match is None:
        raise ResticError(f"unexpected output of restic version: {text.strip()[:80]!r}")
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def parse_time(text: str) -> datetime:
    """Given a restic timestamp (RFC 3339, up to nanoseconds), return an aware UTC datetime.

    Raise ValueError if it is not one.
    """
    match = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text.strip())
    if match is None:
        raise ValueError(f"not a timestamp: {text!r}")
    base, fraction, zone = match.groups()
    micro = f".{(fraction or '0')[:6]}"
    zone = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(base + micro + zone).astimezone(UTC)


def parse_snapshots(text: str) -> list[ResticSnapshot]:
    """Given `restic snapshots --json` output, return the snapshots.

    Raise ResticError (kind "other") naming what is wrong if the JSON is not the
    expected list of snapshot objects.
    """
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ResticError(f"unexpected output of restic snapshots (not JSON): {error}") from error
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ResticError("unexpected output of restic snapshots: not a list")
    snapshots = []
    for index, item in enumerate(raw):
        try:
            if not isinstance(item, dict):
                raise TypeError("not an object")
            summary = item.get("summary")
            snapshots.append(
                ResticSnapshot(
                    id=str(item["id"]),
                    short_id=str(item.get("short_id") or str(item["id"])[:8]),
                    time=parse_time(str(item["time"])),
                    hostname=str(item.get("hostname", "")),
                    paths=tuple(str(p) for p in item.get("paths") or ()),
                    tags=tuple(str(t) for t in item.get("tags") or ()),
                    username=str(item.get("username", "")),
                    parent=item.get("parent"),
                    tree=item.get("tree"),
                    summary=summary if isinstance(summary, dict) else None,
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ResticError(
                f"unexpected output of restic snapshots: entry {index}: {error}"
            ) from error
    return snapshots


def parse_stats(text: str) -> ResticStats:
    """Given `restic stats --json` output, return the totals. Raise ResticError."""
    try:
        raw = json.loads(text)
        return ResticStats(
            total_size=int(raw["total_size"]),
            total_file_count=int(raw.get("total_file_count", 0)),
            snapshots_count=(
                int(raw["snapshots_count"]) if raw.get("snapshots_count") is not None else None
            ),
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ResticError(f"unexpected output of restic stats: {error}") from error


def parse_lock(lock_id: str, text: str) -> ResticLock:
    """Given the JSON of one lock (`restic cat lock ID`), return it. Raise ResticError."""
    try:
        raw = json.loads(text)
        pid = raw.get("pid")
        return ResticLock(
            id=lock_id,
            time=parse_time(str(raw["time"])),
            exclusive=bool(raw.get("exclusive", False)),
            hostname=str(raw.get("hostname", "")),
            username=str(raw.get("username", "")),
            pid=int(pid) if pid is not None else None,
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ResticError(f"unexpected lock {lock_id[:8]}: {error}") from error


# Failures to reach the storage at all. restic 0.14 adds "Is there a repository at the
# following location?" to these too, so they are recognised before a missing repository.
_REACH_WORDS = (
    (re.compile(r"x509|certificate|tls:", re.I),
     "TLS failure reaching the repository (check its certificate, or set ca_bundle)"),
    (re.compile(r"InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|Access Denied|"
                r"403 Forbidden|401 Unauthorized", re.I),
     "the storage refused the credentials"),
    (re.compile(r"connection refused|no such host|network is unreachable|i/o timeout|"
                r"connection reset|deadline exceeded", re.I),
     "cannot reach the repository's storage"),
)


def classify_error(returncode: int, stderr: str) -> str:
    """Given a failed restic call's exit code and stderr, return its kind (ERROR_KINDS)."""
    if returncode in _EXIT_KINDS:
        return _EXIT_KINDS[returncode]
    for kind, pattern in _STDERR_KINDS[:2]:
        if pattern.search(stderr):
            return kind
    if any(pattern.search(stderr) for pattern, _ in _REACH_WORDS):
        return "other"
    for kind, pattern in _STDERR_KINDS[2:]:
        if pattern.search(stderr):
            return kind
    return "other"


_KIND_WORDS = {
    "wrong-password": "wrong repository password (check the password file)",
    "no-repository": "no restic repository at this location",
    "locked": "repository is locked",
    "not-found": "no such snapshot",
}


def error_message(returncode: int, stderr: str, kind: str) -> str:
    """Return one line an operator can act on for a failed restic call."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith("Fatal:")]
    detail = (fatal or lines or ["no message"])[-1].removeprefix("Fatal:").strip()
    words = _KIND_WORDS.get(kind)
    if kind == "other":
        words = next((w for pattern, w in _REACH_WORDS if pattern.search(stderr)), None)
    if kind == "locked":
        holder = [line for line in lines if "locked" in line]
        detail = holder[-1] if holder else detail
    if words and words.lower() not in detail.lower():
        return f"{words}: {detail} (restic exit {returncode})"
    return f"{detail} (restic exit {returncode})"


@dataclass
class Restic:
    """One restic repository, reached with a password file.

    `extra_env` adds environment variables (such as AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY for an S3 backend); values of names that look secret are masked
    in every message. `cache_dir` sets restic's cache; `no_cache` disables it (for
    restores that must read the repository for real). `cacert` trusts a CA file for
    an HTTPS backend.
    """

    repository: str
    password_file: str
    binary: str = "restic"
    extra_env: Mapping[str, str] | None = None
    cache_dir: str | None = None
    no_cache: bool = False
    cacert: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    _version: tuple[int, int, int] | None = field(default=None, repr=False)

    def env(self) -> dict[str, str]:
        """Return the environment of a restic call (the password only as a file name)."""
        env = dict(self.extra_env or {})
        env["RESTIC_REPOSITORY"] = self.repository
        env["RESTIC_PASSWORD_FILE"] = self.password_file
        # Never let an inherited password or password command override the file.
        env["RESTIC_PASSWORD"] = ""
        env["RESTIC_PASSWORD_COMMAND"] = ""
        return env

    def secrets(self) -> list[str]:
        """Return the values to mask in messages."""
        return [v for k, v in (self.extra_env or {}).items() if _SECRET_ENV.search(k) and v]

    def argv(self, args: Sequence[str], *, no_lock: bool = False) -> list[str]:
        """Return the full command line of a restic call (no secret in it)."""
        argv = [self.binary]
        if self.cache_dir:
            argv += ["--cache-dir", self.cache_dir]
        if self.no_cache:
            argv.append("--no-cache")
        if self.cacert:
            argv += ["--cacert", self.cacert]
        if no_lock:
            argv.append("--no-lock")
        return argv + list(args)

    def run(
        self, args: Sequence[str], *, no_lock: bool = False, timeout: float | None = None
    ) -> Completed:
        """Run restic with args and return what it printed. Raise ResticError on failure."""
        try:
            done = run(
                self.argv(args, no_lock=no_lock),
                env=self.env(),
                timeout=timeout or self.timeout,
                secrets=self.secrets(),
            )
        except CommandError as error:
            raise ResticError(f"restic: {error}", "other") from error
        if done.returncode != 0:
            kind = classify_error(done.returncode, done.stderr)
            raise ResticError(
                error_message(done.returncode, done.stderr, kind), kind, done.returncode
            )
        return done

    def run_json(self, args: Sequence[str], *, no_lock: bool = False) -> Any:
        """Run restic with `--json` and return the parsed output. Raise ResticError."""
        done = self.run([*args, "--json"], no_lock=no_lock)
        try:
            return json.loads(done.stdout)
        except json.JSONDecodeError as error:
            raise ResticError(
                f"unexpected output of restic {args[0]} (not JSON): {error}"
            ) from error

    def version(self) -> tuple[int, int, int]:
        """Return the version of the restic program (cached). Raise ResticError."""
        if self._version is None:
            try:
                done = run([self.binary, "version"], timeout=60)
            except CommandError as error:
                raise ResticError(f"restic: {error}", "other") from error
            self._version = parse_version(done.stdout)
        return self._version

    def snapshots(
        self,
        *,
        host: str | None = None,
        paths: Sequence[str] = (),
        tags: Sequence[str] = (),
        no_lock: bool = True,
    ) -> list[ResticSnapshot]:
        """Return the repository's snapshots, oldest first. Raise ResticError.

        Listing takes no lock by default, so a check never blocks the provider's prune.
        """
        args = ["snapshots"]
        if host:
            args += ["--host", host]
        for path in paths:
            args += ["--path", path]
        if tags:
            args += ["--tag", ",".join(tags)]
        done = self.run([*args, "--json"], no_lock=no_lock)
        return sorted(parse_snapshots(done.stdout), key=lambda s: s.time)

    def stats(
        self, snapshot_id: str | None = None, mode: str = "restore-size", *, no_lock: bool = True
    ) -> ResticStats:
        """Return `restic stats` of one snapshot (or the whole repository). Raise ResticError.

        restic 0.14 ignores an unknown snapshot id with a note and reports zeros; that is
        raised as kind "not-found".
        """
        args = ["stats", "--mode", mode]
        if snapshot_id:
            args.append(snapshot_id)
        done = self.run([*args, "--json"], no_lock=no_lock)
        if snapshot_id and re.search(r"Ignoring .*no matching ID", done.stderr):
            raise ResticError(f"no such snapshot: {snapshot_id}", "not-found", done.returncode)
        return parse_stats(done.stdout)

    def locks(self) -> list[ResticLock]:
        """Return the locks present in the repository, with holder and time. Raise ResticError.

        A lock removed between listing and reading it is skipped.
        """
        done = self.run(["list", "locks"], no_lock=True)
        locks = []
        for lock_id in done.stdout.split():
            try:
                shown = self.run(["cat", "lock", lock_id], no_lock=True)
            except ResticError:
                if lock_id not in self.run(["list", "locks"], no_lock=True).stdout:
                    continue
                raise
            locks.append(parse_lock(lock_id, shown.stdout))
        return locks


STALE_LOCK_AFTER = timedelta(minutes=30)


def lock_is_stale(lock: ResticLock, now: datetime, hostname: str) -> bool:
    """Return True when a lock is stale as restic judges it.

    Stale means not refreshed for 30 minutes (restic refreshes a live lock every 5), or
    held on this host by a process that no longer exists.
    """
    if now - lock.time > STALE_LOCK_AFTER:
        return True
    if lock.hostname == hostname and lock.pid is not None:
        try:
            os.kill(lock.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False

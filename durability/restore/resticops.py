"""The restic calls of a restore test: choose, list, restore, check packs.

Every call goes through `durability.execute.run` with `--no-cache` (a shared cache
can hide a corrupted pack: restic 0.14 reads tree blobs from it instead of the
repository) and the password in RESTIC_PASSWORD_FILE, never on the command line.
Parsers are pure and classify restic's messages into the kinds a restore test
judges differently: a test that could not start (UNKNOWN) or data that is wrong
(CRITICAL).
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from durability.errors import CommandError, DurabilityError, ParseError
from durability.execute import Completed, run
from durability.restic import (
    Restic,
    ResticError,
    ResticLock,
    ResticSnapshot,
    lock_is_stale,
    parse_snapshots,
    parse_time,
)

# Kinds of failure. "data" means the repository's content is wrong (CRITICAL once
# restoring has begun); the others mean the test could not run (UNKNOWN).
KIND_PASSWORD = "password"  # noqa: S105 - a kind name, not a secret
KIND_LOCKED = "locked"
KIND_MISSING_REPOSITORY = "missing-repository"
KIND_NO_SNAPSHOT = "no-snapshot"
KIND_NO_SPACE = "no-space"
KIND_UNREACHABLE = "unreachable"
KIND_DATA = "data"
KIND_OTHER = "other"

# restic 0.16+ exit codes (0.14 exits 1 for everything and is classified by message).
_EXIT_KINDS = {10: KIND_MISSING_REPOSITORY, 11: KIND_LOCKED, 12: KIND_PASSWORD}

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (KIND_PASSWORD, re.compile(r"wrong password or no key found", re.I)),
    (KIND_LOCKED, re.compile(r"repository is already locked|unable to create lock", re.I)),
    (
        KIND_UNREACHABLE,
        re.compile(
            r"connection refused|no such host|i/o timeout|network is unreachable"
            r"|certificate signed by unknown authority|x509:"
            r"|Access Denied|InvalidAccessKeyId|SignatureDoesNotMatch|TLS handshake",
            re.I,
        ),
    ),
    (
        KIND_MISSING_REPOSITORY,
        re.compile(
            r"unable to open config file|Is there a repository at|repository does not exist"
            r"|The specified bucket does not exist|NoSuchBucket",
            re.I,
        ),
    ),
    (KIND_NO_SPACE, re.compile(r"no space left on device|disk quota exceeded", re.I)),
    (
        KIND_DATA,
        re.compile(
            r"ciphertext verification failed|decrypting blob|invalid data returned"
            r"|unexpected (EOF|end of)|hash mismatch|StreamPack|LoadBlob|not found in index"
            r"|pack file .* does not exist|id .* not found|checksum|is corrupt|Load\(<data/"
            r"|unable to load tree|invalid (pack|header)|blob .* not found",
            re.I,
        ),
    ),
)

_LOCK_HOLDER = re.compile(
    r"locked (?:exclusively )?by (?:PID )?(?P<pid>\d+) on (?P<host>\S+) by (?P<user>[^\n(]+?)"
    r"\s*(?:\(UID \d+, GID \d+\))?\s*$",
    re.M,
)
_LOCK_CREATED = re.compile(r"lock was created at (?P<at>[^\n]+?)\s*(?:\((?P<age>[^)]*)\))?$", re.M)


class ResticFailure(DurabilityError):
    """A restic command failed; `kind` says how a restore test should judge it.

    `stderr` is restic's (masked) error output, for the per-file errors of a restore.
    """

    def __init__(self, message: str, kind: str, stderr: str = "") -> None:
        self.kind = kind
        self.stderr = stderr
        super().__init__(message)


_FILE_ERROR = re.compile(r"^ignoring error for (?P<path>/.*?): (?P<reason>.+)$")
_ERROR_COUNT = re.compile(r"There were (?P<count>\d+) errors")


def parse_file_errors(stderr: str) -> list[tuple[str, str]]:
    """Given restic restore's stderr, return (path, reason) of each file it could not restore.

    Follow-on errors of a file already named (its times could not be set because it
    was never written) are left out.
    """
    errors: list[tuple[str, str]] = []
    seen: set[str] = set()
    for line in stderr.splitlines():
        match = _FILE_ERROR.match(line.strip())
        if not match:
            continue
        path, reason = match["path"], match["reason"].strip()
        if path in seen:
            continue
        seen.add(path)
        errors.append((path, reason))
    return errors


@dataclass(frozen=True)
class Node:
    """One entry of a snapshot as `restic ls --json` lists it."""

    path: str
    type: str
    size: int
    mtime: datetime | None


def classify(stderr: str, returncode: int | None = None) -> str:
    """Given restic's stderr (and exit code), return the kind of failure."""
    if returncode in _EXIT_KINDS:
        return _EXIT_KINDS[returncode]
    for kind, pattern in _PATTERNS:
        if pattern.search(stderr):
            return kind
    return KIND_OTHER


def failure_line(stderr: str) -> str:
    """Given restic's stderr, return the most telling single line (no stack traces)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    lock = describe_lock(stderr)
    if lock:
        return lock
    files = parse_file_errors(stderr)
    if files:
        path, reason = files[0]
        count = _ERROR_COUNT.search(stderr)
        more = f" ({len(files)} files, {count['count']} errors)" if len(files) > 1 and count else ""
        return f"{path}: {reason}{more}"
    for _kind, pattern in _PATTERNS:
        for line in lines:
            if pattern.search(line) and not line.startswith("github.com/"):
                return _strip_fatal(line)
    for line in lines:
        if line.startswith("Fatal:"):
            return _strip_fatal(line)
    return _strip_fatal(lines[-1]) if lines else "no message"


def _strip_fatal(line: str) -> str:
    return line.removeprefix("Fatal: ").strip()


def describe_lock(stderr: str) -> str | None:
    """Given restic's lock conflict message, return who holds the lock and since when."""
    holder = _LOCK_HOLDER.search(stderr)
    if not holder:
        return None
    text = (
        f"repository is locked by PID {holder['pid']} on {holder['host']} "
        f"by {holder['user'].strip()}"
    )
    created = _LOCK_CREATED.search(stderr)
    if created:
        text += f", since {created['at'].strip()}"
        if created["age"]:
            text += f" ({created['age']})"
    return text


def call(
    repo: Restic, args: Sequence[str], *, timeout: float | None = None, no_lock: bool = False
) -> Completed:
    """Run `restic ARGS` on a repository; raise ResticFailure (classified) on failure.

    `no_lock` is for reads that need not hold the repository (a lock costs a write and
    a quarter second per call); the restore itself always takes its lock.
    """
    try:
        done = run(
            repo.argv(args, no_lock=no_lock), env=repo.env(), timeout=timeout or repo.timeout,
            secrets=repo.secrets(),
        )
    except CommandError as error:
        raise ResticFailure(f"restic: {error}", KIND_OTHER) from error
    if done.returncode != 0:
        kind = classify(done.stderr, done.returncode)
        raise ResticFailure(
            f"restic {args[0]}: {failure_line(done.stderr)}", kind, done.stderr
        )
    return done


def _node_time(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError as error:
        raise ParseError(f"restic ls: {error}") from error


def parse_ls(text: str) -> list[Node]:
    """Given `restic ls --json` output, return its nodes (the snapshot line skipped)."""
    nodes = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise ParseError("restic ls: not JSON", line=number, text=line) from error
        if item.get("struct_type") == "snapshot" or "path" not in item:
            continue
        mtime = item.get("mtime")
        nodes.append(
            Node(
                path=str(item["path"]),
                type=str(item.get("type", "")),
                size=int(item.get("size") or 0),
                mtime=_node_time(mtime) if mtime else None,
            )
        )
    return nodes


def choose_snapshot(
    snapshots: Sequence[ResticSnapshot], which: str, now: datetime, rng: random.Random | None = None
) -> ResticSnapshot:
    """Given snapshots, return the one `which` names: latest, random, or an ID prefix.

    Snapshots dated more than 5 minutes in the future are never chosen by latest or
    random, and refused by ID. Raise ResticFailure (no-snapshot) if none fits.
    """
    future = now + timedelta(minutes=5)
    if which in ("latest", "random"):
        usable = [s for s in snapshots if s.time <= future]
        if not usable:
            extra = " (only future-dated ones)" if snapshots else ""
            raise ResticFailure(f"no snapshot to test{extra}", KIND_NO_SNAPSHOT)
        if which == "latest":
            return max(usable, key=lambda s: s.time)
        return (rng or random.SystemRandom()).choice(usable)
    matches = [s for s in snapshots if s.id.startswith(which.lower())]
    if not matches:
        raise ResticFailure(f"snapshot {which} not found", KIND_NO_SNAPSHOT)
    if len(matches) > 1:
        raise ResticFailure(f"snapshot ID {which} is ambiguous", KIND_NO_SNAPSHOT)
    chosen = matches[0]
    if chosen.time > future:
        raise ResticFailure(
            f"snapshot {chosen.short_id} is dated in the future ({chosen.time.isoformat()});"
            " refusing to test it",
            KIND_NO_SNAPSHOT,
        )
    return chosen


def list_snapshots(repo: Restic) -> list[ResticSnapshot]:
    """Given a repository, return its snapshots. Raise ResticFailure if it cannot."""
    try:
        return parse_snapshots(call(repo, ["snapshots", "--json"], no_lock=True).stdout)
    except ResticError as error:
        raise ResticFailure(str(error), KIND_OTHER) from error


def list_nodes(repo: Restic, snapshot_id: str) -> list[Node]:
    """Given a snapshot, return what it holds. Raise ResticFailure if it cannot."""
    return parse_ls(call(repo, ["ls", "--json", snapshot_id], no_lock=True).stdout)


def escape_pattern(path: str) -> str:
    """Given a path, return a restic include pattern matching exactly that path."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", path)


def restore_args(snapshot_id: str, target: str, includes: Iterable[str] = ()) -> list[str]:
    """Given a snapshot and a target folder, return the restore arguments (verifying)."""
    args = ["restore", snapshot_id, "--target", target, "--verify"]
    for path in includes:
        args += ["--include", escape_pattern(path)]
    return args


def restore(
    repo: Restic, snapshot_id: str, target: str, includes: Sequence[str] = ()
) -> Completed:
    """Restore a snapshot into target with `--verify`.

    Raise ResticFailure if restic reports any error (a partial restore is a failure).
    """
    return call(repo, restore_args(snapshot_id, target, includes))


def parse_index_packs(text: str) -> set[str]:
    """Given `restic cat index ID` JSON, return the pack IDs it references."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ParseError(f"restic index: not JSON: {error}") from error
    return {str(pack["id"]) for pack in raw.get("packs") or ()}


_REMOTE_SCHEMES = ("s3:", "sftp:", "rest:", "b2:", "azure:", "gs:", "swift:", "rclone:")


def local_folder(repository: str) -> str | None:
    """Given a restic repository string, return its folder if it is a local repository."""
    if repository.startswith(_REMOTE_SCHEMES):
        return None
    folder = repository.removeprefix("local:")
    return folder if os.path.isdir(os.path.join(folder, "data")) else None


def _local_ids(folder: str, nested: bool) -> list[str]:
    """Return the file names (IDs) under a local repository folder (data/XX/ID or index/ID)."""
    names: list[str] = []
    for current, _dirs, files in os.walk(folder):
        if nested or current == folder:
            names.extend(name for name in files if re.fullmatch(r"[0-9a-f]{64}", name))
    return names


def list_packs(repo: Restic) -> set[str]:
    """Given a repository, return the IDs of the pack files it holds.

    A local repository's folder is listed directly: one restic start (and key
    derivation, half a second of CPU) saved.
    """
    folder = local_folder(repo.repository)
    if folder is not None:
        return set(_local_ids(os.path.join(folder, "data"), nested=True))
    return set(call(repo, ["list", "packs"], no_lock=True).stdout.split())


def list_indexes(repo: Restic) -> list[str]:
    """Given a repository, return the IDs of its index files (listed directly if local)."""
    folder = local_folder(repo.repository)
    if folder is not None:
        return sorted(_local_ids(os.path.join(folder, "index"), nested=False))
    return call(repo, ["list", "index"], no_lock=True).stdout.split()


def index_packs(repo: Restic, index_id: str) -> set[str]:
    """Given an index file, return the pack IDs it references."""
    return parse_index_packs(call(repo, ["cat", "index", index_id], no_lock=True).stdout)


def unlock_stale(repo: Restic) -> None:
    """Remove only stale locks (`restic unlock` without --remove-all)."""
    call(repo, ["unlock"])


def check_subset(repo: Restic, subset: str) -> Completed:
    """Run `restic check --read-data-subset SUBSET`; raise ResticFailure on errors."""
    return call(repo, ["check", "--read-data-subset", subset])


def rotating_subset(spec: str, now: datetime) -> str:
    """Given "1/7" (one part of seven), return the part for today: "n/7".

    A subset spec other than "1/N" (a percentage, a size) is returned as it is.
    """
    match = re.fullmatch(r"\s*1\s*/\s*(\d+)\s*", spec)
    if not match:
        return spec
    parts = int(match.group(1))
    day = int(now.timestamp() // 86400)
    return f"{day % parts + 1}/{parts}"


def password_file_usable(path: str) -> str | None:
    """Given a password file path, return a problem sentence or None if usable."""
    from durability.secrets import check_secret_file

    return check_secret_file(path, "password_file")


def describe_holder(lock: ResticLock, now: datetime) -> str:
    """Given a lock, return who holds it and for how long, in one phrase."""
    from durability.units import format_duration

    kind = "exclusive lock" if lock.exclusive else "lock"
    pid = f"PID {lock.pid} " if lock.pid is not None else ""
    age = format_duration((now - lock.time).total_seconds())
    return f"{kind} held by {pid}on {lock.hostname} by {lock.username} for {age}"


def held_locks(repo: Restic, now: datetime) -> tuple[list[str], bool]:
    """Given a repository, return descriptions of its live locks and whether stale ones exist.

    Raise ResticFailure if the locks cannot be listed.
    """
    import socket

    try:
        locks = repo.locks()
    except ResticError as error:
        raise ResticFailure(str(error), KIND_OTHER) from error
    hostname = socket.gethostname()
    live = [lock for lock in locks if not lock_is_stale(lock, now, hostname)]
    return [describe_holder(lock, now) for lock in live], len(live) < len(locks)

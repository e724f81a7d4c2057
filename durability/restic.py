"""The one restic seam: every restic call of durability goes through `Restic.run`.

The password only ever travels as `RESTIC_PASSWORD_FILE` (or a password command); stdin
is /dev/null so restic never waits at a prompt. Each call runs supervised
(`durability.execute.supervise`): in its own process group, killed by the kernel if
durability dies (even by SIGKILL), killed when its time is up, and killed early when
it keeps retrying an unreachable backend for longer than `retry_budget` (restic 0.17
and newer retry for up to 15 minutes and have no option to stop sooner).

Failures become `ResticError` with one `kind` of ERROR_KINDS, classified from the exit
code on restic 0.17 and newer (10 no repository, 11 locked, 12 wrong password) and from
stderr on older versions, where every failure is exit 1. The message is one readable
line: restic's own reason, never a Go stack frame.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from durability.errors import CommandError, DurabilityError
from durability.execute import Completed, Watch, supervise

if TYPE_CHECKING:
    from durability.resticlocal import LocalRepository

# The kinds of failure, the same for snapshots, restore tests and the helper.
WRONG_PASSWORD = "wrong-password"  # noqa: S105 - a kind name, not a secret
NO_REPOSITORY = "no-repository"
LOCKED = "locked"
UNREACHABLE = "unreachable"  # network, TLS, refused credentials, or retried too long
TIMEOUT = "timeout"  # the call ran past its time and was killed
NOT_FOUND = "not-found"  # no such snapshot
NO_SPACE = "no-space"  # the local target (scratch, cache) is full
DAMAGED = "damaged"  # the repository's data is wrong or missing
OTHER = "other"
ERROR_KINDS = (
    WRONG_PASSWORD, NO_REPOSITORY, LOCKED, UNREACHABLE, TIMEOUT, NOT_FOUND, NO_SPACE, DAMAGED,
    OTHER,
)

# Exit codes of restic 0.17 and newer.
_EXIT_KINDS = {10: NO_REPOSITORY, 11: LOCKED, 12: WRONG_PASSWORD}

# Failures to reach the storage at all, with the words an operator can act on. restic
# 0.14 adds "Is there a repository at the following location?" to these too, so they
# are recognised before a missing repository.
_REACH_WORDS = (
    (re.compile(r"x509|certificate|tls:|TLS handshake", re.I),
     "TLS failure reaching the repository (check its certificate, or set ca_bundle)"),
    (re.compile(r"InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|Access Denied|"
                r"403 Forbidden|401 Unauthorized", re.I),
     "the storage refused the credentials"),
    (re.compile(r"connection refused|no such host|network is unreachable|i/o timeout|"
                r"connection reset|deadline exceeded|no route to host|"
                r"server misbehaving|EOF$", re.I),
     "cannot reach the repository's storage"),
)

# stderr patterns, in the order they are tried (after the exit codes).
_STDERR_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (WRONG_PASSWORD, re.compile(r"wrong password|no key found", re.I)),
    (LOCKED, re.compile(r"repository is already locked|unable to create lock", re.I)),
    (NO_SPACE, re.compile(r"no space left on device|disk quota exceeded", re.I)),
    (
        DAMAGED,
        re.compile(
            r"ciphertext verification failed|decrypting blob|invalid data returned"
            r"|unexpected (EOF|end of)|hash mismatch|StreamPack|LoadBlob|not found in index"
            r"|pack file .* does not exist|id [0-9a-f]+ not found|checksum|is corrupt"
            r"|Load\(<data/|unable to load tree|invalid (pack|header)|blob .* not found"
            r"|Unknown blob|could not load snapshot|does not match|wrong (length|size)",
            re.I,
        ),
    ),
)
_NOT_FOUND = re.compile(
    r"no matching ID found|no snapshot found|snapshot .* not found|invalid id", re.I
)
_NO_REPOSITORY = re.compile(
    r"Is there a repository at the following location|unable to open config file"
    r"|repository does not exist|The specified bucket does not exist|NoSuchBucket",
    re.I,
)
# restic 0.17+ reports a backend call it will retry, and later its success.
_RETRYING = re.compile(r"^(?P<op>.+?) returned error, retrying after [^:]+: (?P<why>.+)$")
_RETRIED_OK = re.compile(r"^(?P<op>.+?) operation successful after \d+ retries")

_SECRET_ENV = re.compile(r"SECRET|PASSWORD|TOKEN|KEY$", re.I)

DEFAULT_TIMEOUT = 3600.0
# How long restic may keep retrying one backend request before it counts as unreachable.
DEFAULT_RETRY_BUDGET = 60.0


class ResticError(DurabilityError):
    """A restic call failed; `kind` is one of ERROR_KINDS. The message holds no secret.

    `stderr` is restic's (masked) error output, for callers that read more from it (the
    per-file errors of a restore).
    """

    def __init__(
        self, message: str, kind: str = OTHER, returncode: int | None = None, stderr: str = ""
    ) -> None:
        self.kind = kind
        self.returncode = returncode
        self.stderr = stderr
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
    # The snapshot `restic rewrite` made this one from, if it did.
    original: str | None = None


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
                    original=str(item["original"]) if item.get("original") else None,
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ResticError(
                f"unexpected output of restic snapshots: entry {index}: {error}"
            ) from error
    return snapshots


_DAMAGED_SNAPSHOT = re.compile(
    r"could not load snapshot (?P<a>[0-9a-f]+)|failed to load snapshot (?P<b>[0-9a-f]+)"
    r"|Ignoring \"(?P<c>[0-9a-f]{64})\""
)


def damaged_snapshots(stderr: str) -> list[str]:
    """Given stderr of `restic snapshots`, return the ids of snapshot files it skipped."""
    found: list[str] = []
    for line in stderr.splitlines():
        match = _DAMAGED_SNAPSHOT.search(line)
        if match:
            ident = match["c"] or match["a"] or match["b"]
            if not any(ident.startswith(seen) or seen.startswith(ident) for seen in found):
                found.append(ident)
    return found


_CHECK_NOISE = re.compile(
    r"repository contains errors|no errors were found|must be repaired|troubleshooting", re.I
)


def check_errors(output: str) -> str | None:
    """Given what `restic check` printed, return its first error in one line, or None."""
    lines = [line.rstrip() for line in readable_lines(output)]
    for number, line in enumerate(lines):
        if "error" not in line.lower() or _CHECK_NOISE.search(line):
            continue
        text = _strip_fatal(line)
        if text.endswith(":") and number + 1 < len(lines):
            text = f"{text} {lines[number + 1].strip()}"
        return text
    return None


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


def _json_messages(stderr: str) -> list[str]:
    """Return the messages of restic's JSON error lines (`--json` on restic 0.17+)."""
    found = []
    for line in stderr.splitlines():
        line = line.strip()
        if not (line.startswith("{") and "exit_error" in line):
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(item, dict) and isinstance(item.get("message"), str):
            found.append(item["message"])
    return found


_STACK_NAME = re.compile(r"^[\w.\-/*()]+$")


def _is_stack(line: str) -> bool:
    """Return True for a line of a Go stack trace (a function name or a file:line)."""
    if not line.strip():
        return True
    if line[:1] in ("\t", " ") and re.search(r"\.(go|s):\d+", line):
        return True
    text = line.strip()
    if re.search(r"\.(go|s):\d+$", text) and " " not in text:
        return True
    return bool(_STACK_NAME.match(text)) and ("." in text or "/" in text)


def readable_lines(stderr: str) -> list[str]:
    """Given restic's stderr, return its message lines: stack frames and JSON unwrapped."""
    text = stderr
    messages = _json_messages(stderr)
    if messages:
        text = "\n".join(
            [line for line in stderr.splitlines() if "exit_error" not in line] + messages
        )
    return [
        line.strip() for line in text.splitlines()
        if not _is_stack(line) and not line.strip().startswith("{")
    ]


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


_LOCK_HOLDER = re.compile(
    r"locked (?:exclusively )?by (?:PID )?(?P<pid>\d+) on (?P<host>\S+) by (?P<user>[^\n(]+?)"
    r"\s*(?:\(UID \d+, GID \d+\))?\s*$",
    re.M,
)
_LOCK_CREATED = re.compile(
    r"lock was created at (?P<at>[^\n]+?)\s*(?:\((?P<age>[^)]*)\))?$", re.M
)


def describe_lock_conflict(stderr: str) -> str | None:
    """Given restic's lock conflict message, return who holds the lock and since when."""
    holder = _LOCK_HOLDER.search(stderr)
    if not holder:
        return None
    how = "exclusively " if "exclusively" in holder.group(0) else ""
    text = (
        f"repository is locked {how}by PID {holder['pid']} on {holder['host']} "
        f"by {holder['user'].strip()}"
    )
    created = _LOCK_CREATED.search(stderr)
    if created:
        text += f", since {created['at'].strip()}"
        if created["age"]:
            text += f" ({created['age']})"
    return text


# A Go panic, and the parts of restic that read a snapshot's trees: restic 0.18.0 panics
# (nil pointer) in its tree walker when a tree blob cannot be decrypted.
_PANIC = re.compile(r"^panic: (?P<what>.+)$", re.M)
_TREE_READERS = re.compile(r"internal/walker|internal/restorer|LoadTree|StreamTrees")


def _panic(stderr: str) -> str | None:
    """Return the panic message if restic crashed, else None."""
    match = _PANIC.search(stderr)
    return match["what"].strip() if match else None


def classify_error(returncode: int | None, stderr: str) -> str:
    """Given a failed restic call's exit code and stderr, return its kind (ERROR_KINDS).

    A crash of restic while it reads a snapshot's trees is counted as damaged data.
    """
    if returncode in _EXIT_KINDS:
        return _EXIT_KINDS[returncode]
    if _panic(stderr) is not None:
        return DAMAGED if _TREE_READERS.search(stderr) else OTHER
    text = "\n".join(readable_lines(stderr))
    for kind, pattern in _STDERR_KINDS[:3]:
        if pattern.search(text):
            return kind
    if any(pattern.search(text) for pattern, _ in _REACH_WORDS):
        return UNREACHABLE
    if _NOT_FOUND.search(text):
        return NOT_FOUND
    if _STDERR_KINDS[3][1].search(text):
        return DAMAGED
    if _NO_REPOSITORY.search(text):
        return NO_REPOSITORY
    return OTHER


_KIND_WORDS = {
    WRONG_PASSWORD: "wrong repository password (check the password file)",
    NO_REPOSITORY: "no restic repository at this location",
    LOCKED: "repository is locked",
    NOT_FOUND: "no such snapshot",
    NO_SPACE: "no space left",
    DAMAGED: "repository data damaged",
}


def reason(stderr: str) -> str:
    """Given restic's stderr, return its most telling single line (never a stack frame)."""
    lock = describe_lock_conflict(stderr)
    if lock:
        return lock
    crash = _panic(stderr)
    if crash is not None:
        where = re.search(r"^(github\.com/restic/restic/\S+?)\(", stderr, re.M)
        place = f" in {where[1].rsplit('/', 1)[-1]}" if where else ""
        reading = " while reading the snapshot's trees" if _TREE_READERS.search(stderr) else ""
        return f"restic crashed{reading} ({crash}{place})"
    files = parse_file_errors(stderr)
    if files:
        path, why = files[0]
        count = _ERROR_COUNT.search(stderr)
        more = f" ({len(files)} files, {count['count']} errors)" if len(files) > 1 and count else ""
        return f"{path}: {why}{more}"
    lines = readable_lines(stderr)
    retried = [m["why"] for m in map(_RETRYING.match, lines) if m]
    lines = [line for line in lines if not _RETRYING.match(line)]
    for _kind, pattern in _STDERR_KINDS:
        for line in lines:
            if pattern.search(line):
                return _strip_fatal(line)
    fatal = [line for line in lines if line.startswith("Fatal:")]
    useful = [line for line in fatal if not _ERROR_COUNT.search(line)]
    if useful:
        return _strip_fatal(useful[-1])
    if retried:
        return retried[-1].strip()
    lines = [line for line in lines if not line.startswith(("restoring ", "Summary:"))]
    return _strip_fatal((lines or fatal or ["no message"])[0])


def _strip_fatal(line: str) -> str:
    return line.removeprefix("Fatal:").strip()


def error_message(returncode: int | None, stderr: str, kind: str) -> str:
    """Return one line an operator can act on for a failed restic call."""
    detail = reason(stderr)
    words = _KIND_WORDS.get(kind)
    if kind == UNREACHABLE:
        text = "\n".join(readable_lines(stderr))
        words = next((w for pattern, w in _REACH_WORDS if pattern.search(text)), None)
    if kind == LOCKED and detail.startswith("repository is locked"):
        words = None
    suffix = f" (restic exit {returncode})" if returncode is not None else ""
    if words and words.lower() not in detail.lower():
        return f"{words}: {detail}{suffix}"
    return f"{detail}{suffix}"


# Errors no retry can cure: restic is stopped at the first retry that names one.
_HOPELESS = re.compile(r"no space left on device|disk quota exceeded|read-only file system", re.I)


class RetryWatch(Watch):
    """Stops restic once its backend has kept failing for longer than `budget` seconds.

    restic 0.17+ prints "X returned error, retrying after ..." for each retry and
    "X operation successful after N retries" when one recovers. The clock starts at the
    first retry after the last success, whichever request it is (a full disk fails a new
    pack file each time). A retry of an error no retry can cure (a full disk) stops
    restic at once.
    """

    def __init__(
        self, budget: float, on_line: Callable[[str], None] | None = None,
        stop_when: Callable[[], str | None] | None = None,
    ) -> None:
        import time

        self.stop_when = stop_when
        self.stopped_by_caller: str | None = None
        self.budget = budget
        self.clock = time.monotonic
        self.since: float | None = None
        self.last: tuple[str, str] | None = None
        self.hopeless = False
        self.on_line = on_line

    def stderr_line(self, line: str) -> None:
        """Note a retry, or a request that recovered."""
        line = line.strip()
        retry = _RETRYING.match(line)
        if retry:
            if self.since is None:
                self.since = self.clock()
            self.last = (retry["op"], retry["why"])
            self.hopeless = self.hopeless or bool(_HOPELESS.search(retry["why"]))
            return
        if _RETRIED_OK.match(line):
            self.since = None

    def stdout_line(self, line: str) -> None:
        """Pass stdout lines on to the caller's handler, if any."""
        if self.on_line is not None:
            self.on_line(line)

    def give_up(self, now: float) -> str | None:
        """Return why restic must stop: the caller's reason, a hopeless error, or failing
        past the budget."""
        if self.stop_when is not None and self.stopped_by_caller is None:
            self.stopped_by_caller = self.stop_when()
        if self.stopped_by_caller is not None:
            return self.stopped_by_caller
        if self.since is None or self.last is None:
            return None
        op, why = self.last
        if self.hopeless:
            return f"stopped retrying {op}: {why}"
        failing = self.clock() - self.since
        if failing > self.budget:
            return f"still retrying {op} after {failing:.0f}s (limit {self.budget:g}s): {why}"
        return None


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
    retry_budget: float = DEFAULT_RETRY_BUDGET
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
        self,
        args: Sequence[str],
        *,
        no_lock: bool = False,
        timeout: float | None = None,
        on_stdout: Callable[[str], None] | None = None,
        keep_stdout: bool = True,
        stop_when: Callable[[], str | None] | None = None,
    ) -> Completed:
        """Run restic with args and return what it printed. Raise ResticError on failure.

        The call is killed after `timeout` (default: the wrapper's), or once one backend
        request has been retried for longer than `retry_budget` (kind "unreachable").
        `on_stdout` sees each line of output as it comes; with `keep_stdout` False the
        output is not kept (for listings too large to hold). `stop_when`, asked about
        five times a second, returns a reason to stop restic (kind no-space if the
        reason says "no space", else other), or None.
        """
        limit = timeout or self.timeout
        watch = RetryWatch(self.retry_budget, on_stdout, stop_when)
        try:
            done = supervise(
                self.argv(args, no_lock=no_lock),
                env=self.env(),
                timeout=limit,
                secrets=self.secrets(),
                watch=watch,
                keep_stdout=keep_stdout,
            )
        except CommandError as error:
            raise ResticError(f"restic: {error}", OTHER) from error
        command = next((arg for arg in args if not arg.startswith("-")), "restic")
        if done.stopped is not None and watch.stopped_by_caller is not None:
            reason = watch.stopped_by_caller
            kind = NO_SPACE if "no space" in reason else OTHER
            raise ResticError(f"restic {command} stopped: {reason}", kind, None, done.stderr)
        if done.stopped is not None:
            retrying = watch.give_up(0.0)
            if retrying is not None and watch.hopeless:
                kind = classify_error(None, retrying)
                raise ResticError(f"restic {command} {retrying}", kind, None, done.stderr)
            if retrying is not None:
                text = "\n".join(readable_lines(done.stderr))
                words = next(
                    (w for pattern, w in _REACH_WORDS if pattern.search(text)),
                    "cannot reach the repository's storage",
                )
                raise ResticError(f"{words}: restic {command} {retrying}", UNREACHABLE,
                                  None, done.stderr)
            retried = [m["why"] for m in map(_RETRYING.match, readable_lines(done.stderr)) if m]
            why = f" (retrying: {retried[-1]})" if retried else ""
            kind = UNREACHABLE if retried else TIMEOUT
            raise ResticError(f"restic {command} {done.stopped}, killed{why}", kind, None,
                              done.stderr)
        if done.returncode != 0:
            kind = classify_error(done.returncode, done.stderr)
            raise ResticError(
                error_message(done.returncode, done.stderr, kind), kind, done.returncode,
                done.stderr,
            )
        return Completed(done.argv, done.returncode, done.stdout, done.stderr)

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
                done = supervise([self.binary, "version"], timeout=60)
            except CommandError as error:
                raise ResticError(f"restic: {error}", OTHER) from error
            if done.stopped or done.returncode != 0:
                raise ResticError(
                    f"restic version: {done.stopped or reason(done.stderr)}", OTHER
                )
            self._version = parse_version(done.stdout)
        return self._version

    def local_reader(self, folder: str) -> LocalRepository:
        """Return a direct reader of this local repository (`restic cat masterkey`, once).

        Raise ResticError if restic cannot open the repository, or
        `resticlocal.Unsupported` if what it printed is not a master key.
        """
        from durability import resticlocal

        fresh = [] if self.no_cache else ["--no-cache"]
        done = self.run([*fresh, "cat", "masterkey"], no_lock=True)
        return resticlocal.LocalRepository(folder, resticlocal.parse_masterkey(done.stdout))

    def repository_id(self) -> str:
        """Return the repository's id (`restic cat config`, read without a cache)."""
        fresh = [] if self.no_cache else ["--no-cache"]
        done = self.run([*fresh, "cat", "config"], no_lock=True)
        try:
            value = json.loads(done.stdout)["id"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ResticError(f"unexpected output of restic cat config: {error}") from error
        if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ResticError("unexpected output of restic cat config: no repository id")
        return value

    def listing(
        self, *, no_cache: bool = True, no_lock: bool = True
    ) -> tuple[list[ResticSnapshot], list[str]]:
        """Return the repository's snapshots (oldest first) and the ids of damaged ones.

        restic skips a snapshot file it cannot read with a note and exits 0; each such
        file is returned by id (full or short, as restic names it), never dropped. The
        listing reads the repository itself (`--no-cache` by default): a cached copy
        of a snapshot file hides its damage.
        """
        args = ["--no-cache"] if no_cache and not self.no_cache else []
        done = self.run([*args, "snapshots", "--json"], no_lock=no_lock)
        snapshots = sorted(parse_snapshots(done.stdout), key=lambda s: s.time)
        return snapshots, damaged_snapshots(done.stderr)

    def check(self, *, timeout: float | None = None) -> str | None:
        """Run `restic check` (index, snapshots and trees; no pack data) with a fresh cache.

        Return None when restic finds no error, else the first error it names (one
        line). Raise ResticError when the check could not run (locked, unreachable).

        The check runs without a lock: restic 0.14's check takes an exclusive one, which
        would make the provider's backups fail meanwhile. A prune running alongside can
        make a lock-free check see pack files vanish, so an error is confirmed by a
        second check under restic's lock before it is returned.
        """
        found = self._check_once(no_lock=True, timeout=timeout)
        if found is None:
            return None
        try:
            return self._check_once(no_lock=False, timeout=timeout)
        except ResticError as error:
            raise ResticError(
                f"restic check found {found!r} without a lock and could not confirm it: "
                f"{error}", error.kind, error.returncode, error.stderr,
            ) from error

    def _check_once(self, *, no_lock: bool, timeout: float | None) -> str | None:
        try:
            self.run(["check"], timeout=timeout, no_lock=no_lock)
        except ResticError as error:
            if error.kind in (LOCKED, UNREACHABLE, TIMEOUT, WRONG_PASSWORD, NO_REPOSITORY):
                raise
            found = check_errors(error.stderr)
            if found is None and error.kind != DAMAGED:
                raise
            return found or str(error)
        return None

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
        damaged = damaged_snapshots(done.stderr)
        if damaged:
            raise ResticError(
                f"damaged snapshot file(s): {', '.join(d[:8] for d in damaged)} "
                "(restic could not load them)",
                DAMAGED, done.returncode, done.stderr,
            )
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

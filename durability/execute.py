"""The one place that starts a subprocess.

Commands are argument lists (never a shell). Secrets travel in files or environment
variables that name files (RESTIC_PASSWORD_FILE), never on the command line; any value
passed in `secrets` is masked in logs and error messages all the same.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence

from durability import log as durability_log
from durability.errors import CommandError
from durability.records import Record

TYPE_CHECKING = False  # typing costs the cron job more than the check
if TYPE_CHECKING:
    from typing import Any

log = durability_log.get(__name__)


class Completed(Record):
    """What a finished command returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def mask(text: str, secrets: Sequence[str]) -> str:
    """Return text with every secret replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    secrets: Sequence[str] = (),
    check: bool = False,
    cwd: str | None = None,
    stdin_devnull: bool = True,
) -> Completed:
    """Run a command and return its output.

    `env` is added to the current environment. stdin is /dev/null so that no tool ever
    waits for a password prompt. Raise CommandError if the program is missing, times
    out, or (with `check`) exits non-zero; the message is masked.
    """
    shown = mask(shlex.join(argv), secrets)
    log.debug("running %s", shown)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run(
            list(argv),
            env=full_env,
            cwd=cwd,
            stdin=subprocess.DEVNULL if stdin_devnull else None,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as error:
        raise CommandError(f"{argv[0]}: program not found") from error
    except PermissionError as error:
        raise CommandError(f"{argv[0]}: permission denied") from error
    except subprocess.TimeoutExpired as error:
        raise CommandError(f"{shown}: timed out after {timeout:g}s") from error
    result = Completed(tuple(argv), proc.returncode, proc.stdout, mask(proc.stderr, secrets))
    if check and proc.returncode != 0:
        last = result.stderr.strip().splitlines()[-1:] or ["no message"]
        raise CommandError(
            f"{shown}: exit {proc.returncode}: {last[0]}",
            returncode=proc.returncode,
            stderr=result.stderr,
        )
    return result


# --- Supervised children: bounded, killed with their whole group, never outliving us. ---

_PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None = None


def _load_prctl() -> Callable[..., int] | None:
    """Return libc's prctl, resolved once before any fork (None where there is none)."""
    global _prctl
    if _prctl is None:
        try:
            import ctypes
            import ctypes.util

            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            _prctl = libc.prctl
        except (OSError, AttributeError):
            return None
    return _prctl


def _child_setup(prctl: Callable[..., int] | None, parent: int) -> Callable[[], None]:
    """Return the code run in the child between fork and exec.

    It asks the kernel for SIGKILL when the parent dies, then checks that the parent
    did not already die before that request (the child would otherwise be orphaned).
    Only the pre-resolved prctl is called: nothing that takes a lock.
    """

    def setup() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(255)

    return setup


class Watch:
    """What a supervised run reports while it goes (override what you need).

    `stderr_line` and `stdout_line` see each line as it arrives; `give_up` is asked
    about twice a second and returns a reason to kill the child, or None.
    """

    def stderr_line(self, line: str) -> None:
        """See one line of stderr."""

    def stdout_line(self, line: str) -> None:
        """See one line of stdout."""

    def give_up(self, now: float) -> str | None:
        """Return a reason to stop the child now, or None to let it run."""
        return None


class Supervised(Record):
    """What a supervised command returned; `stopped` is why it was killed, if it was."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    stopped: str | None = None
    seconds: float = 0.0


def _exited(pid: int) -> bool:
    """Return True once the child has exited, without reaping it.

    While it is an unreaped zombie its pid, and so its process group id, cannot be
    given to another process: killing the group then can only hit what it started.
    """
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group_quietly(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill a child started by `supervise` and everything in its process group, then reap it."""
    _kill_group_quietly(proc.pid)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
        log.warning("child %d did not die after SIGKILL", proc.pid)


def supervise(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    secrets: Sequence[str] = (),
    watch: Watch | None = None,
    keep_stdout: bool = True,
) -> Supervised:
    """Run a command that must never outlive this process nor run past its time.

    The child gets its own process group (so a timeout kills what it started too) and
    SIGKILL from the kernel when this process dies, even by SIGKILL. It is killed when
    `timeout` seconds pass or when `watch.give_up` returns a reason; an exception in the
    caller (SIGTERM, Ctrl-C) kills it as well. stdin is /dev/null. Raise CommandError if
    the program is missing or not executable; a kill is reported in `stopped`, not raised.
    The kernel ties the death signal to the thread that started the child; this function
    waits for the child in that same thread, so the thread cannot end first.
    """
    import threading
    import time

    shown = mask(shlex.join(argv), secrets)
    log.debug("running %s", shown)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    watch = watch or Watch()
    prctl = _load_prctl()
    try:
        proc = subprocess.Popen(
            list(argv),
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            process_group=0,
            preexec_fn=_child_setup(prctl, os.getpid()),
        )
    except FileNotFoundError as error:
        raise CommandError(f"{argv[0]}: program not found") from error
    except PermissionError as error:
        raise CommandError(f"{argv[0]}: permission denied") from error
    started = time.monotonic()
    out: list[str] = []
    err: list[str] = []

    def pump(stream: Any, keep: list[str], see: Callable[[str], None], store: bool) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            if store:
                keep.append(line)
            try:
                see(line)
            except Exception:  # a watcher's bug must not block the pipe
                log.debug("watcher failed", exc_info=True)
        stream.close()

    readers = [
        threading.Thread(
            target=pump, args=(proc.stdout, out, watch.stdout_line, keep_stdout), daemon=True
        ),
        threading.Thread(target=pump, args=(proc.stderr, err, watch.stderr_line, True),
                         daemon=True),
    ]
    for reader in readers:
        reader.start()
    stopped: str | None = None
    delay = 0.002
    try:
        while not _exited(proc.pid):
            now = time.monotonic()
            if stopped is None:
                if timeout is not None and now - started > timeout:
                    stopped = f"timed out after {timeout:g}s"
                else:
                    stopped = watch.give_up(now - started)
                if stopped:
                    log.debug("stopping %s: %s", shown, stopped)
                    _kill_group_quietly(proc.pid)
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        # Exited but not reaped: whatever it left running in its group goes too.
        _kill_group_quietly(proc.pid)
        proc.wait()
    finally:
        if proc.returncode is None:
            kill_group(proc)
        for reader in readers:
            reader.join(timeout=10)
    return Supervised(
        argv=tuple(argv),
        returncode=proc.returncode,
        stdout="".join(out),
        stderr=mask("".join(err), secrets),
        stopped=stopped,
        seconds=time.monotonic() - started,
    )

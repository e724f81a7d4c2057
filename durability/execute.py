"""The one place that starts a subprocess.

Commands are argument lists (never a shell). Secrets travel in files or environment
variables that name files (RESTIC_PASSWORD_FILE), never on the command line; any value
passed in `secrets` is masked in logs and error messages all the same.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence

from durability import log as durability_log
from durability.errors import CommandError
from durability.records import Record

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


def run_lines(
    argv: Sequence[str],
    on_line: Callable[[str], None],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    secrets: Sequence[str] = (),
) -> Completed:
    """Run a command, handing each line of its stdout to `on_line` as it comes.

    For listings too large to hold twice (restic ls of millions of files): stdout is
    not kept (`Completed.stdout` is empty); stderr is, masked. If `on_line` raises, the
    command is killed and the error propagates. Raise CommandError if the program is
    missing or times out (it is killed).
    """
    shown = mask(shlex.join(argv), secrets)
    log.debug("running %s (streamed)", shown)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        proc = subprocess.Popen(
            list(argv), env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, errors="replace",
        )
    except FileNotFoundError as error:
        raise CommandError(f"{argv[0]}: program not found") from error
    except PermissionError as error:
        raise CommandError(f"{argv[0]}: permission denied") from error
    assert proc.stdout is not None and proc.stderr is not None
    errors: list[str] = []
    stderr = proc.stderr
    reader = threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)
    reader.start()
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        proc.kill()

    timer = threading.Timer(timeout, expire) if timeout else None
    if timer is not None:
        timer.start()
    try:
        for line in proc.stdout:
            on_line(line)
        proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        if timer is not None:
            timer.cancel()
        reader.join()
        proc.stdout.close()
        stderr.close()
    if expired.is_set():
        raise CommandError(f"{shown}: timed out after {timeout:g}s")
    return Completed(tuple(argv), proc.returncode, "", mask("".join(errors), secrets))

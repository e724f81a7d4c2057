"""The one place that starts a subprocess.

Commands are argument lists (never a shell). Secrets travel in files or environment
variables that name files (RESTIC_PASSWORD_FILE), never on the command line; any value
passed in `secrets` is masked in logs and error messages all the same.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence

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

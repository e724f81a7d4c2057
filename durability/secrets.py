"""The one reader of secret files (`*_file` config keys).

A secret file holds the secret as its whole content; one trailing newline (as an
editor or `echo` leaves it) is removed, nothing else. It is refused, with a message
naming the config key and the path but never the content, when it is missing, not a
regular file, empty, larger than `MAX_SECRET_BYTES`, or readable or writable by other
users. Group access is allowed (mode 0640), so a service group may share a secret with
its owner; "other" access (the last octal digit) is not.
"""

from __future__ import annotations

import errno
import os
import stat

from durability.errors import DurabilityError

MAX_SECRET_BYTES = 64 * 1024


class SecretFileError(DurabilityError):
    """A secret file cannot be used; the message names the key and path, never the content."""


def read_secret_bytes(path: str | None, key: str) -> bytes:
    """Given a secret file path and its config key, return the secret.

    Raise SecretFileError if unset, unreadable, not a regular file, empty, too large or
    open to other users.
    """
    if not path:
        raise SecretFileError(f"At '{key}': not set")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        reason = ("it is a symbolic link" if error.errno == errno.ELOOP
                  else error.strerror or "error")
        raise SecretFileError(f"At '{key}': cannot read {path}: {reason}") from error
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretFileError(f"At '{key}': {path} is not a regular file")
        if info.st_mode & 0o007:
            raise SecretFileError(
                f"At '{key}': {path} is open to other users (mode "
                f"{stat.S_IMODE(info.st_mode):04o}); run `chmod 600 {path}` (0640 is allowed)"
            )
        if info.st_size > MAX_SECRET_BYTES:
            raise SecretFileError(
                f"At '{key}': {path} is larger than {MAX_SECRET_BYTES} bytes; "
                "it is not a secret file"
            )
        chunks = []
        total = 0
        while total <= MAX_SECRET_BYTES:
            chunk = os.read(fd, MAX_SECRET_BYTES + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as error:
        raise SecretFileError(f"At '{key}': cannot read {path}: {error.strerror}") from error
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_SECRET_BYTES:
        raise SecretFileError(f"At '{key}': {path} is larger than {MAX_SECRET_BYTES} bytes")
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise SecretFileError(f"At '{key}': {path} is empty")
    return data


def read_secret_text(path: str | None, key: str) -> str:
    """Given a secret file path and its config key, return the secret as UTF-8 text.

    Raise SecretFileError as `read_secret_bytes` does, or if the content is not UTF-8.
    """
    data = read_secret_bytes(path, key)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SecretFileError(f"At '{key}': {path} is not UTF-8 text") from error


def check_secret_file(path: str | None, key: str) -> str | None:
    """Given a secret file path and its key, return a problem sentence, or None if usable."""
    try:
        read_secret_bytes(path, key)
    except SecretFileError as error:
        return str(error)
    return None

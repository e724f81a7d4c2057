"""A small local restic repository of example data, for the README and for tests."""

from __future__ import annotations

import os
import random
import secrets
from dataclasses import dataclass

from durability.errors import CommandError
from durability.execute import run


@dataclass(frozen=True)
class DemoRepository:
    """A restic repository made by `build_demo_repository`."""

    repository: str
    password_file: str
    data_dir: str
    snapshot_id: str


def write_example_data(folder: str, files: int = 24, size: int = 64 * 1024, seed: int = 1) -> int:
    """Write example files (text and binary, in subfolders) under folder; return bytes.

    The content is random but reproducible from `seed`.
    """
    rng = random.Random(seed)  # noqa: S311 - example data, not a secret
    total = 0
    for number in range(files):
        sub = os.path.join(folder, f"site{number % 3}", "public" if number % 2 else "data")
        os.makedirs(sub, exist_ok=True)
        if number % 4 == 0:
            body = "".join(f"line {i} of file {number}\n" for i in range(size // 24)).encode()
        else:
            body = rng.randbytes(size + number * 517)
        path = os.path.join(sub, f"file{number:03d}.{'txt' if number % 4 == 0 else 'bin'}")
        with open(path, "wb") as handle:
            handle.write(body)
        total += len(body)
    os.makedirs(os.path.join(folder, "empty"), exist_ok=True)
    os.symlink("site0/data/file000.txt", os.path.join(folder, "latest.txt"))
    return total


def build_demo_repository(
    path: str,
    password_file: str,
    data_dir: str | None = None,
    restic: str = "restic",
    files: int = 24,
    size: int = 64 * 1024,
) -> DemoRepository:
    """Create a restic repository at path holding one snapshot of example data.

    The password file is created (mode 0600, a random password) if it does not exist.
    The example data goes to `data_dir` (default: PATH-data) and stays there, so a
    restore test can also compare with the live files. Raise CommandError if restic fails.
    """
    data_dir = data_dir or f"{path.rstrip('/')}-data"
    if not os.path.exists(password_file):
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
    if not os.path.exists(data_dir):
        os.makedirs(data_dir)
        write_example_data(data_dir, files=files, size=size)
    env = {
        "RESTIC_REPOSITORY": path,
        "RESTIC_PASSWORD_FILE": password_file,
        "RESTIC_PASSWORD": "",
        "RESTIC_PASSWORD_COMMAND": "",
    }
    if not os.path.exists(os.path.join(path, "config")):
        run([restic, "--no-cache", "init"], env=env, check=True, timeout=120)
    done = run(
        [restic, "--no-cache", "backup", "--json", "--host", "demo", data_dir],
        env=env, check=True, timeout=600,
    )
    snapshot_id = ""
    import json

    for line in done.stdout.splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if item.get("message_type") == "summary":
            snapshot_id = str(item.get("snapshot_id", ""))
    if not snapshot_id:
        raise CommandError("restic backup reported no snapshot id")
    return DemoRepository(path, password_file, data_dir, snapshot_id)

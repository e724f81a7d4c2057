"""A private PostgreSQL 15 cluster for tests: initdb + pg_ctl in a temp dir, 127.0.0.1 only.

initdb refuses to run as root, so when the tests run as root the cluster belongs to the
unprivileged `postgres` (or `nobody`) account and its commands run through `runuser`.
Each test gets its own database (`create_database`), dropped by the caller.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

BIN = "/usr/lib/postgresql/15/bin"


@dataclass(frozen=True)
class Cluster:
    """A running cluster: connect as superuser `postgres` without password on `port`."""

    root: str
    port: int

    def url(self, database: str = "postgres") -> str:
        """Given a database name, return its postgresql:// URL."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """Create a fresh, uniquely named database and return its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database named by `url`, disconnecting whoever is still on it."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def restart(cluster: Cluster) -> None:
    """Restart the cluster's server as `pg_ctl restart -m fast` does: every session is cut."""
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    subprocess.run(
        _as_owner([f"{BIN}/pg_ctl", "-D", os.path.join(cluster.root, "data"), "-m", "fast",
                   "-w", "-t", "60", "-l", os.path.join(cluster.root, "log"), "restart"],
                  _owner()),
        check=True, capture_output=True, env=env, cwd=cluster.root,
    )


def available() -> bool:
    """Return True when Debian's PostgreSQL 15 server binaries are installed."""
    return os.path.exists(os.path.join(BIN, "initdb"))


def _owner() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and no postgres/nobody account for initdb")


def _as_owner(argv: list[str], owner: str | None) -> list[str]:
    if owner is None:
        return argv
    return ["runuser", "-u", owner, "--", *argv]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    """Start a throwaway cluster and stop and remove it afterwards."""
    owner = _owner()
    root = tempfile.mkdtemp(prefix="durability-pg-")
    os.chmod(root, 0o755)
    data = os.path.join(root, "data")
    if owner is not None:
        entry = pwd.getpwnam(owner)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    subprocess.run(
        _as_owner([f"{BIN}/initdb", "-D", data, "-U", "postgres", "-A", "trust",
                   "-E", "UTF8", "--no-sync"], owner),
        check=True, capture_output=True, env=env, cwd=root,
    )
    options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
    subprocess.run(
        _as_owner([f"{BIN}/pg_ctl", "-D", data, "-o", options, "-l",
                   os.path.join(root, "log"), "-w", "-t", "60", "start"], owner),
        check=True, capture_output=True, env=env, cwd=root,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield Cluster(root, port)
    finally:
        subprocess.run(
            _as_owner([f"{BIN}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], owner),
            capture_output=True, env=env, cwd=root, check=False,
        )
        shutil.rmtree(root, ignore_errors=True)

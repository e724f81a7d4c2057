"""Fixtures of the snapshots tests: real restic repositories made on the spot."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ResticBinary


@dataclass
class ResticRepo:
    """A real restic repository in a temp folder, and how to add snapshots to it."""

    repository: str
    password_file: Path
    data: Path
    env: dict[str, str]
    flags: list[str] = field(default_factory=list)

    def restic(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the real restic against this repository."""
        return subprocess.run(
            ["restic", *self.flags, *args], env=self.env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, check=check,
        )

    def backup(
        self, when: str, *, host: str = "web1", size: int = 1000, tags: tuple[str, ...] = (),
        folder: str = "www",
    ) -> None:
        """Back up `folder` (holding `size` bytes) as a snapshot dated `when` (UTC)."""
        target = self.data / folder
        target.mkdir(parents=True, exist_ok=True)
        (target / "payload.bin").write_bytes(os.urandom(size))
        args = ["backup", "-q", "--host", host, "--time", when, str(target)]
        for tag in tags:
            args += ["--tag", tag]
        self.restic(*args)

    def stale_exclusive_lock(self) -> None:
        """Leave an exclusive lock behind, as a `restic check` killed mid-run does."""
        (self.data / "filler").mkdir(parents=True, exist_ok=True)
        (self.data / "filler" / "f.bin").write_bytes(os.urandom(3_000_000))
        self.restic("backup", "-q", str(self.data / "filler"))
        locks = Path(self.repository) / "locks"
        for _ in range(20):
            proc = subprocess.Popen(
                ["restic", "check", "--read-data"], env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                if any("tmp" not in p.name for p in locks.iterdir()):
                    proc.kill()
                    proc.wait()
                    return
                time.sleep(0.002)
            proc.wait()
        raise AssertionError("could not leave a lock behind")


PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def restic_template(
    tmp_path_factory: pytest.TempPathFactory, restic_binary: ResticBinary
) -> Path:
    """Return an empty initialised repository, made once per restic version: `init`
    spends seconds on its KDF."""
    base = tmp_path_factory.mktemp(f"restic-template-{restic_binary.version}")
    password = base / "pw"
    password.write_text(PASSWORD + "\n")
    subprocess.run(
        [str(restic_binary), "init", "-q"], check=True, stdin=subprocess.DEVNULL, capture_output=True,
        env={**os.environ, "RESTIC_REPOSITORY": str(base / "repo"),
             "RESTIC_PASSWORD_FILE": str(password)},
    )
    return base / "repo"


@pytest.fixture
def restic_repo(tmp_path: Path, restic_template: Path) -> ResticRepo:
    """Return a fresh, initialised local restic repository (a copy of the template)."""
    password = tmp_path / "restic-password"
    password.write_text(PASSWORD + "\n")
    repo = tmp_path / "repo"
    shutil.copytree(restic_template, repo)
    env = {
        **os.environ,
        "RESTIC_REPOSITORY": str(repo),
        "RESTIC_PASSWORD_FILE": str(password),
        "RESTIC_CACHE_DIR": str(tmp_path / "cache"),
        "TZ": "UTC",
    }
    return ResticRepo(str(repo), password, tmp_path / "data", env)


@pytest.fixture
def fake_restic(tmp_path: Path) -> Callable[[int, str], Path]:
    """Return a function making a fake restic that prints stderr and exits with a code.

    Only used to prove that a secret restic might echo is masked (real restic never does).
    """

    def make(code: int, stderr: str, version: str = "0.17.3") -> Path:
        script = tmp_path / f"restic-{code}"
        script.write_text(
            "#!/bin/sh\n"
            f'if [ "$1" = version ]; then echo "restic {version} compiled with go"; exit 0; fi\n'
            f"echo '{stderr}' >&2\nexit {code}\n"
        )
        script.chmod(0o755)
        return script

    return make

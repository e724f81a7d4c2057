"""Nodes reporting to the central server: tokens, payloads, recording, the client."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from durability.errors import ConfigError, ProbeError
from durability.fleet import send_report
from durability.model import Status
from durability.web.fleet import PayloadError, parse_node_tokens, parse_payload
from durability.web.server import make_server
from tests.web_status.conftest import NOW, TOKENS, StatusWorld, json_of, raid_report


def latest(world: StatusWorld, node: str) -> list[tuple[Any, ...]]:
    store = world.store()
    try:
        store.migrate("fleet", __import__("durability.web.fleet", fromlist=["x"]).MIGRATIONS)
        return store.query("SELECT target, status, summary FROM fleet_latest WHERE node = ?"
                           " ORDER BY target", (node,))
    finally:
        store.close()


def test_receive_report_valid_token_recorded_as_latest(status_world: StatusWorld) -> None:
    report = raid_report(NOW, ("md0", Status.OK, "clean"), ("md1", Status.CRITICAL, "degraded"))
    response = status_world.report("node-a", report)
    assert response.status_code == 200
    assert json_of(response) == {"status": "recorded", "node": "node-a", "check": "raid",
                                 "latest": True}
    assert latest(status_world, "node-a") == [("md0", "OK", "clean"),
                                              ("md1", "CRITICAL", "degraded")]


def test_receive_report_wrong_token_403_nothing_recorded(status_world: StatusWorld) -> None:
    response = status_world.report("node-a", raid_report(NOW, ("md0", Status.OK, "clean")),
                                   token="not-a-token")
    assert response.status_code == 403
    assert json_of(response) == {"error": "node token not accepted"}
    assert latest(status_world, "node-a") == []


def test_receive_report_missing_token_401(status_world: StatusWorld) -> None:
    response = status_world.client.post("/fleet/report", data=b"{}")
    assert response.status_code == 401
    assert "missing node token" in json_of(response)["error"]


def test_receive_report_token_of_other_node_403(status_world: StatusWorld) -> None:
    response = status_world.report("node-b", raid_report(NOW, ("md0", Status.OK, "clean")),
                                   token=TOKENS["node-a"])
    assert response.status_code == 403
    assert json_of(response)["error"] == "this token belongs to node 'node-a', not 'node-b'"
    assert latest(status_world, "node-b") == []


def test_receive_report_malformed_body_400_with_reason(status_world: StatusWorld) -> None:
    response = status_world.client.post(
        "/fleet/report", data=b'{"schema_version": 1, "node": "node-a", "report": {"check": '
        b'"raid", "checked_at": "yesterday", "results": []}}',
        headers={"Authorization": f"Bearer {TOKENS['node-a']}"})
    assert response.status_code == 400
    assert json_of(response)["error"] == "report.checked_at: not an ISO-8601 time: 'yesterday'"


def test_receive_report_older_report_kept_out_of_latest(status_world: StatusWorld) -> None:
    status_world.report("node-a", raid_report(NOW, ("md0", Status.OK, "clean")))
    late = status_world.report("node-a", raid_report(NOW - timedelta(hours=1),
                                                     ("md0", Status.CRITICAL, "old news")))
    assert json_of(late)["latest"] is False
    assert latest(status_world, "node-a") == [("md0", "OK", "clean")]


def test_receive_report_no_node_tokens_file_503(
    status_world: StatusWorld, tmp_path: Path
) -> None:
    from werkzeug.test import Client

    from durability.config import load_config
    from durability.web.app import make_app

    assert status_world.config.path
    text = Path(status_world.config.path).read_text()
    closed = tmp_path / "closed.toml"
    closed.write_text("\n".join(line for line in text.splitlines()
                                if not line.startswith("node_tokens_file")))
    client = Client(make_app(load_config(str(closed)), status_world.store))
    response = client.post("/fleet/report", data=b"{}",
                           headers={"Authorization": "Bearer x"})
    assert response.status_code == 503
    assert "durability nodes add" in json_of(response)["error"]


def test_parse_node_tokens_bad_line_config_error_names_line() -> None:
    with pytest.raises(ConfigError, match="line 2: expected NODE:SHA256-HEX"):
        parse_node_tokens("# nodes\nnode-a:abc\n")


@pytest.mark.parametrize(("body", "reason"), [
    (b"not json", "body is not JSON"),
    (b'{"schema_version": 2}', "expected a JSON object with schema_version 1"),
    (b'{"schema_version": 1, "node": "", "report": {}}', "node: expected a non-empty string"),
    (b'{"schema_version": 1, "node": "n", "report": {"check": "raid", "checked_at": '
     b'"2026-11-25T10:00:00Z", "results": [{"target": "md0", "status": "FINE", '
     b'"summary": "x"}]}}', "report.results[0].status: expected one of"),
])
def test_parse_payload_bad_input_payload_error(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse_payload(body)


@pytest.fixture
def served(status_world: StatusWorld) -> Iterator[str]:
    server = make_server(status_world.app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    thread.join(5)


def test_send_report_real_server_recorded(status_world: StatusWorld, served: str) -> None:
    send_report(f"{served}/fleet/report", TOKENS["node-c"],
                raid_report(NOW, ("md5", Status.WARNING, "rebuilding")), timeout=5,
                node="node-c")
    assert latest(status_world, "node-c") == [("md5", "WARNING", "rebuilding")]


def test_send_report_wrong_token_probe_error_without_token(served: str) -> None:
    with pytest.raises(ProbeError) as caught:
        send_report(f"{served}/fleet/report", "secret-wrong-token",
                    raid_report(NOW, ("md0", Status.OK, "clean")), timeout=5, node="node-a")
    assert str(caught.value) == (f"fleet report to {served}/fleet/report refused (403): "
                                 "node token not accepted")
    assert "secret-wrong-token" not in str(caught.value)


def test_send_report_unreachable_probe_error() -> None:
    with pytest.raises(ProbeError, match=r"cannot reach fleet server http://127\.0\.0\.1:9/"):
        send_report("http://127.0.0.1:9/fleet/report", "t",
                    raid_report(NOW, ("md0", Status.OK, "clean")), timeout=2)


def test_send_report_not_http_url_probe_error() -> None:
    with pytest.raises(ProbeError, match="must be http:// or https://"):
        send_report("file:///etc/passwd", "t", raid_report(NOW), timeout=2)

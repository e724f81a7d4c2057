"""Receipts and the pending queue against a real local HTTP server that is down, then up."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from durability.helper.folder import Folder, HelperError
from durability.helper.receipts import (
    Receipt,
    check_confirm_url,
    disk_hash,
    flush_pending,
    list_receipts,
    parse_receipt,
    pending,
    queue_receipt,
    receipt_body,
    save_receipt,
    send_receipt,
)

RECEIPT = Receipt(
    time="2026-11-25T10:00:00Z", snapshot_id="a" * 64, files=3, bytes=1234, verified=True,
    disk=disk_hash("0123456789abcdef0123456789abcdef"),
)


class Provider:
    """A tiny provider endpoint: answers each POST with the next (status, body) it is given."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]]]) -> None:
        self.answers = answers
        self.received: list[dict[str, Any]] = []
        self.content_types: list[str] = []


@contextmanager
def provider_on(port: int, provider: Provider) -> Iterator[None]:
    """Serve `provider` on 127.0.0.1:port while inside the block."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            provider.received.append(json.loads(self.rfile.read(length)))
            provider.content_types.append(self.headers.get("Content-Type", ""))
            status, body = provider.answers.pop(0) if provider.answers else (500, {})
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def folder(tmp_path: Path) -> Folder:
    """Return a fresh helper folder."""
    made = Folder(tmp_path / "durability-helper")
    made.ensure()
    return made


def test_disk_hash_is_sha256_hex_not_the_id() -> None:
    digest = disk_hash("0123456789abcdef0123456789abcdef")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert "0123456789abcdef" not in digest


def test_receipt_body_has_exactly_contract_fields() -> None:
    body = receipt_body(RECEIPT)
    assert set(body) == {"receipt"}
    assert set(body["receipt"]) == {"time", "snapshot_id", "files", "bytes", "verified", "disk"}
    assert parse_receipt(body["receipt"]) == RECEIPT


def test_parse_receipt_missing_field_raises() -> None:
    with pytest.raises(ValueError, match="missing"):
        parse_receipt({"time": "x"})


def test_check_confirm_url_https_link_accepted() -> None:
    url = "https://backup.example/l/confirm/abc.def"
    assert check_confirm_url(f" <{url}> ") == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://backup.example/l/confirm/abc", "not a web link"),
        ("http://backup.example/l/confirm/abc", "must start with https"),
        ("https://backup.example/l/unsubscribe/abc", "the link that turns the reminders off, not"),
        ("https://backup.example/somewhere", "not a confirm link"),
        ("just words", "not a web link"),
    ],
)
def test_check_confirm_url_bad_link_clear_error(url: str, message: str) -> None:
    with pytest.raises(HelperError, match=message):
        check_confirm_url(url)


def test_check_confirm_url_plain_http_on_loopback_accepted() -> None:
    assert check_confirm_url("http://127.0.0.1:8080/l/confirm/x") == (
        "http://127.0.0.1:8080/l/confirm/x"
    )


def test_save_receipt_kept_private_and_listed(folder: Folder) -> None:
    path = save_receipt(folder.path, RECEIPT)
    assert path.stat().st_mode & 0o777 == 0o600
    assert list_receipts(folder.path) == [RECEIPT]


def test_list_receipts_damaged_file_skipped(folder: Folder) -> None:
    save_receipt(folder.path, RECEIPT)
    (folder.path / "receipts" / "zz-broken.json").write_text("{not json")
    assert list_receipts(folder.path) == [RECEIPT]


def test_send_receipt_confirmed_posts_json() -> None:
    port = _free_port()
    provider = Provider([(200, {"status": "confirmed", "customer": "c-1", "at": "x"})])
    with provider_on(port, provider):
        outcome = send_receipt(f"http://127.0.0.1:{port}/l/confirm/t", RECEIPT)
    assert outcome.kind == "confirmed"
    assert outcome.customer == "c-1"
    assert provider.received == [receipt_body(RECEIPT)]
    assert provider.content_types == ["application/json"]


@pytest.mark.parametrize(
    ("status", "body", "kind", "message"),
    [
        (403, {"error": "bad signature"}, "refused",
         "refused the confirm link (it is invalid or has expired)"),
        (403, {"error": "server words", "reason": "expired"}, "refused", "because it has expired"),
        (403, {"error": "server words", "reason": "damaged"}, "refused", "incomplete or damaged"),
        (403, {"error": "server words", "reason": "action"}, "refused", "it is not a confirm link"),
        (422, {"error": "server words: unverified"}, "refused", "because the copy was not verified"),
        (404, {"error": "unknown customer"}, "refused", "no longer knows the account"),
        (429, {"error": "too many"}, "refused", "takes no more receipts on this confirm link"),
        (400, {"error": "malformed receipt"}, "refused", "answered with error 400"),
        (503, {}, "unreachable", "will be sent next time"),
        (200, {"status": "something else"}, "unreachable", "unexpected answer"),
    ],
)
def test_send_receipt_provider_answers_classified(
    status: int, body: dict[str, Any], kind: str, message: str
) -> None:
    port = _free_port()
    with provider_on(port, Provider([(status, body)])):
        outcome = send_receipt(f"http://127.0.0.1:{port}/l/confirm/t", RECEIPT)
    assert outcome.kind == kind
    assert message in outcome.message
    if "error" in body:  # the server's English words are not passed on
        assert str(body["error"]) not in outcome.message


def test_flush_pending_server_down_then_up_sent_once(folder: Folder) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/l/confirm/t"
    second = Receipt(**{**receipt_body(RECEIPT)["receipt"], "snapshot_id": "b" * 64,
                        "time": "2026-11-26T10:00:00Z"})
    queue_receipt(folder.path, RECEIPT, url)
    queue_receipt(folder.path, second, url)

    down = flush_pending(folder.path, timeout=2)
    assert [o.kind for o in down] == ["unreachable"]  # the second waits without a try
    assert "cannot reach 127.0.0.1" in down[0].message
    assert len(pending(folder.path)) == 2

    confirmed = {"status": "confirmed", "customer": "c-1", "at": "x"}
    provider = Provider([(200, confirmed), (200, confirmed)])
    with provider_on(port, provider):
        up = flush_pending(folder.path)
        again = flush_pending(folder.path)
    assert [o.kind for o in up] == ["confirmed", "confirmed"]
    assert [r["receipt"]["snapshot_id"] for r in provider.received] == ["a" * 64, "b" * 64]
    assert pending(folder.path) == []
    assert again == []


def test_flush_pending_refused_receipt_dropped(folder: Folder) -> None:
    port = _free_port()
    queue_receipt(folder.path, RECEIPT, f"http://127.0.0.1:{port}/l/confirm/t")
    with provider_on(port, Provider([(403, {"error": "token expired", "reason": "expired"})])):
        outcomes = flush_pending(folder.path)
    assert [o.kind for o in outcomes] == ["refused"]
    assert "refused the confirm link because it has expired" in outcomes[0].message
    assert pending(folder.path) == []

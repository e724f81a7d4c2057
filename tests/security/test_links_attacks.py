"""Attacks on the customer links, over real HTTP: previews, replays, big and deep bodies."""

from __future__ import annotations

import json
import logging
import os

import pytest

from tests.security.conftest import Service


def _receipt(snapshot_id: str) -> bytes:
    return json.dumps({"receipt": {
        "time": "2026-11-25T09:00:00Z", "snapshot_id": snapshot_id, "files": 3,
        "bytes": 1024, "verified": True, "disk": "ab" * 32}}).encode()


@pytest.mark.parametrize("action", ["confirm", "snooze", "unsubscribe"])
def test_head_on_a_link_records_nothing(service: Service, action: str) -> None:
    path = service.link(action)
    for _ in range(3):
        answer = service.request("HEAD", path)
        assert answer.status == 200 and answer.body == b""
    answer = service.request("GET", path)
    assert answer.status == 200 and b"<form method=\"post\"" in answer.body
    customer = service.customer()
    assert customer.last_copy_at is None and customer.confirmed_copies == 0
    assert customer.unsubscribed_at is None and customer.snoozed_until is None


def _respellings(token: str) -> list[str]:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spelled = [token + "=", token + "==", token + "%3D"]
    unused = {2: 0b1111, 3: 0b11}.get(len(token) % 4, 0)
    if unused:
        last = alphabet.index(token[-1])
        spelled += [token[:-1] + alphabet[(last & ~unused) | bit]
                    for bit in range(1, unused + 1)][:3]
    return spelled


def test_used_confirm_link_respelled_is_not_recorded_again(service: Service) -> None:
    path = service.link("confirm")
    first = service.form(path, {"go": "1"})
    assert first.status == 200
    assert service.customer().confirmed_copies == 1
    token = path.rsplit("/", 1)[1]
    for spelled in _respellings(token):
        answer = service.form(f"/l/confirm/{spelled}", {"go": "1"})
        assert answer.status in (200, 403), spelled
        if answer.status == 200:  # only a percent-decoded identical token is the same link
            assert "już użyty" in answer.text
    assert service.form(path, {"go": "1"}).status == 200
    assert service.customer().confirmed_copies == 1


def test_used_snooze_link_respelled_is_refused(service: Service) -> None:
    path = service.link("snooze")
    assert service.form(path, {"days": "7"}).status == 200
    until = service.customer().snoozed_until
    for spelled in _respellings(path.rsplit("/", 1)[1])[:2]:
        assert service.form(f"/l/snooze/{spelled}", {"days": "30"}).status == 403
    assert service.customer().snoozed_until == until


def test_link_body_over_the_cap_413_and_nothing_stored(service: Service) -> None:
    path = service.link("confirm")
    huge = _receipt("a" * 100_000)
    answer = service.request("POST", path, huge, {"Content-Type": "application/json"})
    assert answer.status == 413
    # The same without a length (chunked): the body is cut off at the cap, not read.
    chunks = (huge[i:i + 8192] for i in range(0, len(huge), 8192))
    answer = service.request("POST", path, chunks,  # type: ignore[arg-type]
                             {"Content-Type": "application/json",
                              "Transfer-Encoding": "chunked"})
    assert answer.status == 413
    form = service.form(service.link("snooze"), {"days": "7", "pad": "x" * 50_000})
    assert form.status == 413
    customer = service.customer()
    assert customer.confirmed_copies == 0 and customer.snoozed_until is None


def test_link_body_of_20_megabytes_refused_before_the_app(service: Service) -> None:
    import socket

    body = _receipt("b" * 20_000_000)
    head = (f"POST {service.link('confirm')} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    sent = 0
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(head.encode())
        try:
            for start in range(0, len(body), 65536):  # bounded: 306 chunks at most
                sock.sendall(body[start:start + 65536])
                sent += 65536
        except OSError:
            pass  # the server hung up on the body: refused
        try:
            reply = sock.recv(200)
        except OSError:
            reply = b""
    assert reply.startswith(b"HTTP/1.1 413") or sent < len(body)
    assert service.customer().confirmed_copies == 0
    if service.config.state.path and not service.config.state.url:
        assert os.path.getsize(service.config.state.path) < 1_000_000


def test_receipt_snapshot_id_too_long_400(service: Service) -> None:
    answer = service.request("POST", service.link("confirm"), _receipt("c" * 129),
                             {"Content-Type": "application/json"})
    assert answer.status == 400 and "snapshot_id" in answer.json()["error"]
    assert service.customer().confirmed_copies == 0


def test_one_link_carries_a_bounded_number_of_receipts(service: Service) -> None:
    from durability.web.links import MAX_RECEIPTS_PER_LINK

    path = service.link("confirm")
    answers = [service.request("POST", path, _receipt(f"{n:064x}"),
                               {"Content-Type": "application/json"}).status
               for n in range(MAX_RECEIPTS_PER_LINK + 5)]
    assert answers == [200] * MAX_RECEIPTS_PER_LINK + [429] * 5
    # A receipt already carried is still answered (a helper retrying), changing nothing.
    assert service.request("POST", path, _receipt(f"{0:064x}"),
                           {"Content-Type": "application/json"}).status == 200
    assert service.customer().confirmed_copies == MAX_RECEIPTS_PER_LINK


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deeply_nested_json_400_not_500(service: Service, opener: bytes,
                                        caplog: pytest.LogCaptureFixture) -> None:
    body = opener * 3000 + b"1"  # under the 16 KiB cap, 3000 deep
    answer = service.request("POST", service.link("confirm"), body,
                             {"Content-Type": "application/json"})
    assert answer.status == 400 and "nested deeper" in answer.json()["error"]
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


def test_link_and_login_pages_refuse_framing_and_scripts(service: Service) -> None:
    for path in (service.link("confirm"), "/status/login", "/l/confirm/garbage", "/nowhere"):
        answer = service.request("GET", path)
        assert answer.headers["X-Frame-Options"] == "DENY", path
        policy = answer.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy, path
        if path != "/nowhere":
            assert "default-src 'none'" in policy and "script-src" not in policy, path


def test_failed_link_request_logs_no_token(service: Service,
                                           caplog: pytest.LogCaptureFixture) -> None:
    path = service.link("confirm")
    token = path.rsplit("/", 1)[1]
    assert service.config.web.secret_file
    os.chmod(service.config.web.secret_file, 0o644)  # now refused: the request fails
    with caplog.at_level(logging.INFO):
        answer = service.form(path, {"go": "1"})
    assert answer.status == 500
    assert "/l/confirm/<token>" in caplog.text
    assert token not in caplog.text and token[:20] not in caplog.text


def test_link_carries_no_customer_id(service: Service) -> None:
    import base64

    path = service.link("unsubscribe", "c-2")
    token = path.rsplit("/", 1)[1]
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert b"c-2" not in raw and b"unsubscribe" not in raw
    assert service.form(path, {"go": "1"}).status == 200
    assert service.customer("c-2").unsubscribed_at is not None


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_receipt_time_beyond_the_calendar_400_not_500(
    service: Service, when: str, caplog: pytest.LogCaptureFixture,
) -> None:
    body = json.loads(_receipt("s-1"))
    body["receipt"]["time"] = when
    with caplog.at_level(logging.ERROR):
        answer = service.request("POST", service.link("confirm"), json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    assert answer.status == 400 and "time" in answer.json()["error"]
    assert service.customer().confirmed_copies == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_snooze_link_posted_again_with_other_days_changes_nothing(service: Service) -> None:
    path = service.link("snooze")
    assert service.form(path, {"days": "7"}).status == 200
    until = service.customer().snoozed_until
    for days in ("30", "14", "30&days=30", "\u0663\u0660"):  # the last: "30" in Arabic digits
        answer = service.form(path, {"days": days})
        assert answer.status in (200, 400)
    assert service.customer().snoozed_until == until

"""Attacks on the server's connections, over real sockets: many idle, half-sent requests."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from tests.security.conftest import Service

# More half-sent requests than waitress's default connection limit (100).
HELD = 120


@contextlib.contextmanager
def _half_sent(port: int, source: str, count: int) -> Iterator[list[socket.socket]]:
    """Open `count` connections from `source`, each with a request that never ends."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                            source_address=(source, 0))
            held.append(sock)
            sock.sendall(b"GET /l/confirm/x HTTP/1.1\r\nHost: links.example\r\n")
        yield held
    finally:
        for sock in held:
            sock.close()


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _answer_of(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    answer = b""
    while len(answer) < 1_000_000:
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer


def test_half_sent_requests_from_one_address_do_not_shut_out_customers(
    service: Service,
) -> None:
    with _half_sent(service.port, "127.0.0.2", HELD) as held:
        # A customer opening a link from another address is served, not left waiting.
        answer = service.request("GET", service.link("confirm"), timeout=15)
        assert answer.status == 200 and b'<form method="post"' in answer.body
        # The attacker keeps at most its share of connections; the rest are closed,
        # and one it kept still gets its answer once the request is complete.
        assert _closed_by_server(held[-1])
        held[0].sendall(b"Connection: close\r\n\r\n")
        assert _answer_of(held[0]).startswith(b"HTTP/1.1 403 ")
    answer = service.request("GET", service.link("confirm"), source="127.0.0.2")
    assert answer.status == 200

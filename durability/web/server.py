"""The production WSGI server (waitress) used by `durability serve` and `durability run`."""

from __future__ import annotations

from typing import Any


def make_server(app: Any, host: str, port: int, threads: int = 4) -> Any:
    """Given a WSGI app, a host and a port (0: any free port), return a waitress server.

    The server is bound on return: `.run()` serves until `.close()` is called (from
    another thread or a signal handler); `.effective_port` is the bound port.
    Raise OSError if the address cannot be bound.
    """
    import waitress.server

    return waitress.server.create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="durability",
        # A public page behind a reverse proxy: honour X-Forwarded-* only when set up.
        clear_untrusted_proxy_headers=True,
        channel_timeout=30,
        # No request body above this reaches the app (the app caps each path lower).
        max_request_body_size=4 * 1024 * 1024,
    )


def parse_listen(text: str) -> tuple[str, int]:
    """Given "HOST:PORT" (IPv6 as "[::1]:8080"), return (host, port). Raise ValueError."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    return host.strip("[]"), port

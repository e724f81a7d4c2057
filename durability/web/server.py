"""The production WSGI server (waitress) used by `durability serve` and `durability run`."""

from __future__ import annotations

import logging
import resource
from typing import Any

log = logging.getLogger(__name__)

# Open connections one client (an IPv4 address, or an IPv6 /64) may hold; more are
# closed at once, so a client
# holding many half-sent requests (each kept alive by a byte now and then) cannot take
# every connection the server has and shut the customers' links out.
MAX_CONNECTIONS_PER_ADDRESS = 50
# Open connections over all addresses (waitress's own default is 100), kept below the
# process's file limit.
MAX_CONNECTIONS = 1000


def make_server(app: Any, host: str, port: int, threads: int = 4) -> Any:
    """Given a WSGI app, a host and a port (0: any free port), return a waitress server.

    The server is bound on return: `.run()` serves until `.close()` is called (from
    another thread or a signal handler); `.effective_port` is the bound port.
    Raise OSError if the address cannot be bound.
    """
    import waitress.server

    soft_files, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = MAX_CONNECTIONS if soft_files == resource.RLIM_INFINITY \
        else max(MAX_CONNECTIONS_PER_ADDRESS, min(MAX_CONNECTIONS, soft_files - 100))
    server = waitress.server.create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="durability",
        # A public page behind a reverse proxy: honour X-Forwarded-* only when set up.
        clear_untrusted_proxy_headers=True,
        channel_timeout=30,
        connection_limit=limit,
        # poll(), not select(): select cannot watch file numbers above 1023.
        asyncore_use_poll=True,
        # No request body above this reaches the app (the app caps each path lower).
        max_request_body_size=4 * 1024 * 1024,
    )
    listeners = [server] if hasattr(server, "accept") else [
        listener for listener in server.map.values() if hasattr(listener, "accept")]
    for listener in listeners:
        _cap_per_address(listener)
    return server


def _cap_per_address(listener: Any) -> None:
    """Make a waitress listener close connections beyond the per-address cap."""
    from waitress.channel import HTTPChannel

    from durability.web.accounts import client_key

    accept = listener.accept
    channels: dict[int, Any] = listener._map

    def accept_capped() -> Any:
        accepted = accept()
        if accepted is None:
            return None
        connection, address = accepted
        host = client_key(address[0] if isinstance(address, tuple) else str(address))
        held = sum(1 for channel in list(channels.values())
                   if isinstance(channel, HTTPChannel) and isinstance(channel.addr, tuple)
                   and client_key(channel.addr[0]) == host)
        if held < MAX_CONNECTIONS_PER_ADDRESS:
            return accepted
        log.debug("closed a connection from %s: it holds %d already", host, held)
        connection.close()
        return None

    listener.accept = accept_capped


def parse_listen(text: str) -> tuple[str, int]:
    """Given "HOST:PORT" (IPv6 as "[::1]:8080"), return (host, port). Raise ValueError."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    return host.strip("[]"), port

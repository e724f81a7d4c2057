"""`durability serve`: the customer links (and the status page) over HTTP."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from types import FrameType

from durability.context import Context
from durability.errors import DurabilityError

DESCRIPTION = "Serve the customer links (confirm, snooze, unsubscribe) and the status page."
EPILOG = """\
The address comes from --host/--port, else `web.listen`, else 127.0.0.1:8080. Put a
TLS-terminating reverse proxy in front of it; `web.base_url` is the public HTTPS address.

examples:
  durability serve --config /etc/durability/durability.toml
  durability serve --host 127.0.0.1 --port 8080
"""

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --host and --port."""
    parser.add_argument("--host", help="address to listen on (default from web.listen)")
    parser.add_argument("--port", type=int, help="port to listen on (default from web.listen)")


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Serve until SIGTERM or SIGINT; return 0 on a clean stop."""
    from durability.state.store import open_store
    from durability.web.app import make_app
    from durability.web.server import make_server, parse_listen
    from durability.web.signing import read_secret

    config = ctx.config()
    read_secret(config.web.secret_file)  # fail now, not on the first click
    host, port = "127.0.0.1", 8080
    if config.web.listen:
        try:
            host, port = parse_listen(config.web.listen)
        except ValueError as error:
            raise DurabilityError(f"At 'web.listen': {error}") from error
    host = args.host or host
    port = args.port if args.port is not None else port
    ctx.store()  # open (and create) the store once, so a bad state.path fails here
    state = config.state
    app = make_app(config, lambda: open_store(state.path, state.url))
    try:
        server = make_server(app, host, port)
    except OSError as error:
        raise DurabilityError(f"cannot listen on {host}:{port}: {error.strerror}") from error

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.close, daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    sys.stderr.write(f"durability: serving on http://{host}:{server.effective_port}/\n")
    sys.stderr.flush()
    # The socket map closes under run() when stopping.
    with contextlib.suppress(OSError):
        server.run()
    return 0

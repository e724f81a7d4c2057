"""A real `durability` HTTP service on loopback (the WSGI app on waitress), for attacks.

Every test here talks to it over real sockets with http.client, as an attacker would.
The store comes from `state_toml`, so scripts/test.sh runs these on PostgreSQL too.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from durability.config import Config, load_config
from durability.remind import state
from durability.remind.customers import parse_customers_csv
from durability.state.store import Store, open_store
from durability.web import accounts
from durability.web.app import make_app
from durability.web.server import make_server
from durability.web.signing import link_url, sign_token

SECRET = b"security-test-secret-0123456789abcdef"
PASSWORD = "Correct-Horse-42"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@dataclass
class Answer:
    """One HTTP answer."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        """Return the body as text."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """Return the body as JSON."""
        import json

        return json.loads(self.body)


@dataclass
class Service:
    """A running service: its config, port and clock; `request()` talks to it."""

    config: Config
    tmp: Path
    clock: list[datetime]
    port: int = 0
    servers: list[Any] = field(default_factory=list)

    def store(self) -> Store:
        """Open the state store (the caller closes it)."""
        return open_store(self.config.state.path, self.config.state.url)

    def start(self, threads: int = 4) -> int:
        """Start one more server on the same config and store; return its port."""
        config = self.config
        app = make_app(config, lambda: open_store(config.state.path, config.state.url),
                       clock=lambda: self.clock[0])
        server = make_server(app, "127.0.0.1", 0, threads=threads)
        def serve() -> None:
            with contextlib.suppress(OSError):  # the socket map closes under run()
                server.run()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        self.servers.append((server, thread))
        return int(server.effective_port)

    def stop_all(self) -> None:
        """Stop every server started."""
        for server, thread in self.servers:
            server.close()
            thread.join(10)
        self.servers.clear()

    def request(
        self, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None, *, port: int | None = None,
        source: str = "127.0.0.1", timeout: float = 30,
    ) -> Answer:
        """Send one request from the given loopback address; return the answer."""
        connection = http.client.HTTPConnection("127.0.0.1", port or self.port,
                                                timeout=timeout, source_address=(source, 0))
        try:
            chunked = (headers or {}).get("Transfer-Encoding") == "chunked"
            connection.request(method, path, body=body, headers=headers or {},
                               encode_chunked=chunked)
            response = connection.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            connection.close()

    def form(self, path: str, fields: dict[str, str], headers: dict[str, str] | None = None,
             **options: Any) -> Answer:
        """POST a form."""
        return self.request("POST", path, urlencode(fields).encode(), {
            "Content-Type": "application/x-www-form-urlencoded", **(headers or {})}, **options)

    def link(self, action: str, customer: str = "c-1") -> str:
        """Return the path of a fresh link."""
        return link_url("", action, sign_token(SECRET, customer, action, self.clock[0]))

    def login(self, user: str = "ops", password: str = PASSWORD, **options: Any) -> Answer:
        """POST the login form."""
        return self.form("/status/login", {"user": user, "password": password}, **options)

    def customer(self, customer_id: str = "c-1") -> Any:
        """Return a customer's reminder state."""
        store = self.store()
        try:
            return state.load_state(store, customer_id)
        finally:
            store.close()


def cookie_of(answer: Answer) -> str:
    """Return the session cookie value an answer sets."""
    header = answer.headers.get("Set-Cookie", "")
    assert header.startswith("durability_session="), header
    return header.split(";", 1)[0].split("=", 1)[1]


@pytest.fixture
def service(write_config: Callable[[str], Path], tmp_path: Path) -> Iterator[Service]:
    """Return a running service with customers c-1 (pl), c-2 (en) and the user ops."""
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET + b"\n")
    config = load_config(str(write_config(
        f'[web]\nsecret_file = "{secret}"\nbase_url = "https://links.example"\n')))
    store = open_store(config.state.path, config.state.url)
    try:
        state.import_customers(store, parse_customers_csv(
            "id,email,name,language\nc-1,ola@example.com,Ola,pl\nc-2,bob@example.com,Bob,en\n"),
            NOW - timedelta(days=30))
        accounts.set_user(store, "ops", accounts.hash_password(PASSWORD), NOW)
        store.history(limit=1)  # the results table, which the status page reads
    finally:
        store.close()
    world = Service(config, tmp_path, [NOW])
    world.port = world.start()
    try:
        yield world
    finally:
        world.stop_all()

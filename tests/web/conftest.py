"""An app over a real state store with a few customers, for the link tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from durability.config import Config, load_config
from durability.remind import state
from durability.remind.customers import parse_customers_csv
from durability.state.store import Store, open_store
from durability.web.app import make_app
from durability.web.signing import link_url, sign_token

SECRET = b"web-test-secret-0123456789abcdef"
IMPORTED = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@dataclass
class LinkWorld:
    """A config, its store, a clock the test can move, and a werkzeug test client."""

    config: Config
    clock: list[datetime]
    client: Any
    app: Any

    def store(self) -> Store:
        """Open the state store (the caller closes it)."""
        return open_store(self.config.state.path, self.config.state.url)

    def url(self, action: str, customer: str = "c-1", issued: datetime | None = None,
            lifetime: int | None = None) -> str:
        """Return the path of a freshly signed link."""
        token = sign_token(SECRET, customer, action, issued or self.clock[0], lifetime)
        return link_url("", action, token)


@pytest.fixture
def secret_path(tmp_path: Path) -> Path:
    """Return the link secret file."""
    path = tmp_path / "secret"
    path.write_bytes(SECRET + b"\n")
    return path


@pytest.fixture
def link_world(write_config: Callable[[str], Path], secret_path: Path) -> LinkWorld:
    """Return an app with customers c-1 (pl) and c-2 (en) imported."""
    from werkzeug.test import Client

    config = load_config(str(write_config(
        f'[web]\nsecret_file = "{secret_path}"\nbase_url = "https://links.example"\n')))
    store = open_store(config.state.path, config.state.url)
    try:
        state.import_customers(store, parse_customers_csv(
            "id,email,name,language\nc-1,ola@example.com,Ola,pl\nc-2,bob@example.com,Bob,en\n"),
            IMPORTED)
    finally:
        store.close()
    clock = [datetime(2026, 11, 25, 10, 0, tzinfo=UTC)]
    app = make_app(config, lambda: open_store(config.state.path, config.state.url),
                   clock=lambda: clock[0])
    return LinkWorld(config, clock, Client(app), app)

"""The whole path: a signed confirm link, a receipt POSTed to the real WSGI app served on
127.0.0.1, and the customer's reminders stopped in the state store."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helper.conftest import Helper, LoopDisk

pytest.importorskip("werkzeug")
pytest.importorskip("waitress")

from durability.config import Config, load_config
from durability.remind import state
from durability.remind.customers import parse_customers_csv
from durability.remind.send import plan_now
from durability.state.store import open_store
from durability.web.app import make_app
from durability.web.server import make_server
from durability.web.signing import link_url, sign_token

pytestmark = [pytest.mark.root, pytest.mark.slow]

SECRET = b"helper-e2e-secret-0123456789abcdef"


@pytest.fixture
def provider(write_config: Callable[[str], Path], tmp_path: Path) -> Config:
    """Return the provider's config with customers c-1 and c-2 imported, both due."""
    secret = tmp_path / "link-secret"
    secret.write_bytes(SECRET + b"\n")
    config = load_config(str(write_config(
        f'[web]\nsecret_file = "{secret}"\nbase_url = "https://backup.example"\n')))
    store = open_store(config.state.path, config.state.url)
    try:
        state.import_customers(store, parse_customers_csv(
            "id,email,name,language\nc-1,ola@example.com,Ola,pl\nc-2,bob@example.com,Bob,en\n"),
            datetime(2026, 10, 1, tzinfo=UTC))
    finally:
        store.close()
    return config


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(config: Config, port: int) -> Iterator[None]:
    """Serve the provider's web app on 127.0.0.1:port while inside the block."""
    app = make_app(config, lambda: open_store(config.state.path, config.state.url))
    server = make_server(app, "127.0.0.1", port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.close()
        thread.join(timeout=5)


def _due(config: Config) -> set[str]:
    store = open_store(config.state.path, config.state.url)
    try:
        return {p.customer.id for p in plan_now(store, config, datetime.now(UTC)).due}
    finally:
        store.close()


def _events(config: Config, customer: str) -> list[dict[str, Any]]:
    store = open_store(config.state.path, config.state.url)
    try:
        return state.customer_events(store, customer)
    finally:
        store.close()


def _confirm_url(port: int, customer: str = "c-1") -> str:
    token = sign_token(SECRET, customer, "confirm", datetime.now(UTC))
    return link_url(f"http://127.0.0.1:{port}", "confirm", token)


def test_copy_confirm_url_stops_reminders_in_store(
    helper: Helper, loop_disk: Callable[..., LoopDisk], source: Path, provider: Config
) -> None:
    assert _due(provider) == {"c-1", "c-2"}
    disk = loop_disk(label="OLA")
    assert helper("enroll", disk.mountpoint).code == 0
    port = _free_port()
    with serving(provider, port):
        result = helper("copy", source, "--confirm-url", _confirm_url(port))
    assert result.code == 0, result.stderr
    assert "confirmed the copy (customer c-1)" in result.stdout
    assert _due(provider) == {"c-2"}
    [receipt] = helper.receipts()
    snapshot = json.loads(receipt.read_text())["receipt"]["snapshot_id"]
    helper_events = [e for e in _events(provider, "c-1") if "helper" in json.dumps(e)]
    assert helper_events and snapshot in json.dumps(helper_events)
    assert list((helper.folder / "pending").iterdir()) == []


def test_copy_provider_down_receipt_waits_then_confirm_sends_it(
    helper: Helper, loop_disk: Callable[..., LoopDisk], source: Path, provider: Config
) -> None:
    disk = loop_disk()
    assert helper("enroll", disk.mountpoint).code == 0
    port = _free_port()
    result = helper("copy", source, "--confirm-url", _confirm_url(port))
    assert result.code == 0, result.stderr
    assert "cannot reach 127.0.0.1" in result.stderr
    assert "the server does not answer" in result.stderr and "Errno" not in result.stderr
    assert "will be sent next time" in result.stderr
    assert len(list((helper.folder / "pending").iterdir())) == 1
    assert _due(provider) == {"c-1", "c-2"}
    status = helper("status")
    assert "1 receipt waiting" in status.stdout
    with serving(provider, port):
        sent = helper("confirm")
    assert sent.code == 0, sent.stderr
    assert "confirmed" in sent.stdout
    assert list((helper.folder / "pending").iterdir()) == []
    assert _due(provider) == {"c-2"}


def test_copy_tampered_link_refused_nothing_recorded(
    helper: Helper, loop_disk: Callable[..., LoopDisk], source: Path, provider: Config
) -> None:
    disk = loop_disk()
    assert helper("enroll", disk.mountpoint).code == 0
    port = _free_port()
    url = _confirm_url(port, "c-2")
    tampered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    with serving(provider, port):
        result = helper("copy", source, "--confirm-url", tampered)
        retry = helper("confirm")
    # The provider's reason code reaches the customer in the helper's own words.
    assert ("refused the confirm link because it is incomplete or damaged: copy the whole "
            "link again from your latest reminder email") in result.stderr
    assert "that confirm link will not be used again" in result.stderr
    assert "Errno" not in result.stderr
    assert list((helper.folder / "pending").iterdir()) == []
    assert retry.code == 1
    assert "give the confirm link" in retry.stderr  # the refused link was forgotten
    assert _due(provider) == {"c-1", "c-2"}
    assert not [e for e in _events(provider, "c-2") if "helper" in json.dumps(e)]

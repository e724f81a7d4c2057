"""The status page on a store where no check has run yet: it answers, and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from durability.config import load_config
from durability.state.store import Store, open_store
from durability.web.app import make_app
from durability.web.auth import hash_password

PASSWORD = "Empty-store-1"
FEATURE_TABLES = {"results", "fleet_latest", "fleet_runs", "remind_customers",
                  "remind_outbox", "snapshot_ages", "snapshot_sets", "raid_arrays",
                  "raid_observations"}


def tables(store: Store) -> set[str]:
    if store.dialect == "postgresql":
        rows = store.query("SELECT table_name FROM information_schema.tables"
                           " WHERE table_schema = current_schema()")
    else:
        rows = store.query("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(row[0]) for row in rows}


@pytest.fixture
def empty_client(write_config: Callable[[str], Path], tmp_path: Path) -> tuple[object, Callable[[], Store]]:
    from werkzeug.test import Client

    secret = tmp_path / "secret"
    secret.write_text("empty-store-secret-0123456789abcdef\n")
    secret.chmod(0o600)
    users = tmp_path / "users"
    users.write_text(f"ops:{hash_password(PASSWORD, iterations=1000)}\n")
    users.chmod(0o600)
    config = load_config(str(write_config(
        f'[web]\nsecret_file = "{secret}"\n[status]\nusers_file = "{users}"\n')))

    def opener() -> Store:
        return open_store(config.state.path, config.state.url)

    return Client(make_app(config, opener)), opener


def test_status_on_empty_store_renders_and_creates_no_table(
    empty_client: tuple[object, Callable[[], Store]],
) -> None:
    client, opener = empty_client
    store = opener()
    try:
        before = tables(store)
    finally:
        store.close()
    assert not before & FEATURE_TABLES
    login = client.post("/status/login",  # type: ignore[attr-defined]
                        data={"user": "ops", "password": PASSWORD, "next": "/status"})
    assert login.status_code == 303
    response = client.get("/status?q=c-1&state=overdue")  # type: ignore[attr-defined]
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    # Nothing known is said as such: unknown, never OK.
    assert 'class="overall o-UNKNOWN"' in html
    assert "No RAID report yet" in html
    assert "No provider snapshot check recorded yet." in html
    assert "No customers imported yet." in html
    assert "could not be read" not in html
    store = opener()
    try:
        assert not tables(store) & FEATURE_TABLES
    finally:
        store.close()


def test_root_redirects_to_status_on_empty_store(
    empty_client: tuple[object, Callable[[], Store]],
) -> None:
    client, _ = empty_client
    response = client.get("/")  # type: ignore[attr-defined]
    assert response.status_code == 302
    assert response.headers["Location"] == "/status"

"""A central server's world: config with logins and node tokens, a seeded store, an app."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from durability.config import Config, load_config
from durability.fleet import fleet_payload
from durability.model import Report, Result, Status
from durability.remind import state as remind_state
from durability.remind.customers import parse_customers_csv
from durability.state.store import Store, open_store
from durability.web.app import make_app
from durability.web.auth import hash_password
from durability.web.fleet import token_hash

SECRET = b"status-test-secret-0123456789abcdef"
PASSWORD = "correct horse battery"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TOKENS = {"node-a": "token-a-" + "x" * 30, "node-b": "token-b-" + "y" * 30,
          "node-c": "token-c-" + "z" * 30}


@dataclass
class StatusWorld:
    """A config, a movable clock, a werkzeug test client, and helpers."""

    config: Config
    clock: list[datetime]
    client: Any
    app: Any
    users_file: Path

    def store(self) -> Store:
        """Open the state store (the caller closes it)."""
        return open_store(self.config.state.path, self.config.state.url)

    def login(self, user: str = "ops", password: str = PASSWORD) -> Any:
        """Post the login form and return the response."""
        return self.client.post("/status/login",
                                data={"user": user, "password": password, "next": "/status"})

    def report(self, node: str, report: Report, token: str | None = None) -> Any:
        """POST a node's report to the fleet endpoint and return the response."""
        return self.client.post(
            "/fleet/report", data=fleet_payload(report, node),
            headers={"Authorization": f"Bearer {token or TOKENS[node]}",
                     "Content-Type": "application/json"},
        )


def raid_report(when: datetime, *arrays: tuple[str, Status, str]) -> Report:
    """Return a RAID report with the given (array, status, summary) results."""
    return Report("raid", when, tuple(Result("raid", name, status, summary)
                                      for name, status, summary in arrays))


def seed_history(store: Store, now: datetime) -> None:
    """Record a month of snapshot checks and four weekly restore tests."""
    from durability.snapshots.history import record_source_runs, source_runs

    for hour in range(0, 24 * 30, 6):
        moment = now - timedelta(hours=24 * 30 - hour)
        age = 3600.0 * ((hour % 24) + 1)
        results = (
            Result("snapshots", "s3-backups/web1", Status.OK, "fresh",
                   data={"source": "s3-backups", "age_seconds": age}),
            Result("snapshots", "restic-db/db1:/var/lib/db",
                   Status.WARNING if hour > 24 * 29 else Status.OK, "fresh",
                   data={"source": "restic-db", "age_seconds": age * 1.5}),
        )
        store.record_report(Report("snapshots", moment, results))
        record_source_runs(store, source_runs(results, moment, {"s3-backups": 26 * 3600.0,
                                                                 "restic-db": 26 * 3600.0}))
    for week in range(4):
        moment = now - timedelta(days=7 * (4 - week))
        store.record_report(Report("restore-test", moment, (
            Result("restore-test", "restic-db", Status.OK, f"restored {week + 3} GiB",
                   data={"source": "restic-db", "seconds": {"restore": 600.0 + 60 * week,
                                                            "verify": 120.0},
                         "bytes_per_second": 8e6 + 1e6 * week}),
        )))


@pytest.fixture
def status_world(write_config: Callable[[str], Path], tmp_path: Path) -> StatusWorld:
    """Return a central server with three reporting nodes, history and customers."""
    from werkzeug.test import Client

    secret = tmp_path / "secret"
    secret.write_bytes(SECRET + b"\n")
    users = tmp_path / "users"
    users.write_text(f"# status page logins\nops:{hash_password(PASSWORD, iterations=1000)}\n")
    nodes = tmp_path / "nodes"
    nodes.write_text("".join(f"{node}:{token_hash(token)}\n" for node, token in TOKENS.items()))
    placement = tmp_path / "placement.csv"
    placement.write_text("customer_id,node,source\nc-1,node-a,restic-db\nc-2,node-b,s3-backups\n"
                         "c-3,node-c,restic-db\n")
    config = load_config(str(write_config(
        f'[web]\nsecret_file = "{secret}"\nbase_url = "https://status.example"\n'
        f'[status]\nusers_file = "{users}"\nnode_tokens_file = "{nodes}"\n'
        f'placement_file = "{placement}"\ncustomers_per_page = 10\n'
        '[schedule]\nnode_name = "central"\nsnapshots_every = "6h"\n')))
    store = open_store(config.state.path, config.state.url)
    try:
        remind_state.import_customers(store, parse_customers_csv(
            "id,email,name,language,last_copy_at\n"
            "c-1,ola@example.com,Ola,pl,2026-11-20T10:00:00Z\n"
            "c-2,bob@example.com,Bob,en,2026-09-01T10:00:00Z\n"
            "c-3,eve@example.com,Eve,en,\n"), NOW - timedelta(days=90))
        seed_history(store, NOW)
    finally:
        store.close()
    clock = [NOW]
    app = make_app(config, lambda: open_store(config.state.path, config.state.url),
                   clock=lambda: clock[0])
    return StatusWorld(config, clock, Client(app), app, users)


def json_of(response: Any) -> dict[str, Any]:
    """Return the JSON body of a test-client response."""
    value: dict[str, Any] = json.loads(response.get_data(as_text=True))
    return value


def seed_reminder_states(store: Store, now: datetime) -> None:
    """Add customers in every reminder state to the store (see the names)."""
    from durability.model import isoformat_z
    from durability.remind.records import SENT

    remind_state.import_customers(store, parse_customers_csv(
        "id,email,name,language,last_copy_at\n"
        "c-10,zed@example.com,Zed Maxed,en,\n"
        "c-4,ann@example.com,Ann Refused,en,2026-08-01T00:00:00Z\n"
        "c-5,sam@example.com,Sam Snoozed,en,2026-09-01T00:00:00Z\n"
        "c-6,uma@example.com,Uma Unsubscribed,en,\n"
        "c-7,ida@example.com,Ida Uncertain,en,2026-09-15T00:00:00Z\n"
        "c-20,kim@example.com,Kim Nocopy,en,\n"), now - timedelta(days=60))
    created = now - timedelta(days=60)

    def send(customer: str, email: str, period: datetime, step: int, state: str) -> None:
        key = f"{customer}/{isoformat_z(period)}/{step}"
        assert remind_state.claim(store, key, customer, period, step, f"<{key}@x>", email,
                                  period + timedelta(days=step))
        if state == "uncertain":
            remind_state.mark_handing(store, key)
            remind_state.mark_abandoned_claims(store, now)
        else:
            remind_state.finish(store, key, state, "250 ok", period + timedelta(days=step),
                                customer, email)

    for step in range(1, 7):
        send("c-10", "zed@example.com", created, step, SENT)
    send("c-2", "bob@example.com", datetime(2026, 10, 1, 10, 0, tzinfo=UTC), 1, SENT)
    send("c-2", "bob@example.com", datetime(2026, 10, 1, 10, 0, tzinfo=UTC), 2, SENT)
    send("c-4", "ann@example.com", datetime(2026, 8, 31, tzinfo=UTC), 1, "refused")
    send("c-7", "ida@example.com", datetime(2026, 10, 15, tzinfo=UTC), 1, "uncertain")
    remind_state.record_snooze(store, "c-5", now + timedelta(days=5), "snooze-1", now)
    remind_state.record_unsubscribe(store, "c-6", "link", now - timedelta(days=1))

"""IPv6 clients count as their /64: one host picking a new address per guess gains nothing."""

from __future__ import annotations

import pytest
from werkzeug.test import Client

from durability.web import accounts
from durability.web.app import make_app
from tests.security.conftest import NOW, PASSWORD, Service

WRONG = "Wrong-Guess-99"


@pytest.mark.parametrize(("address", "key"), [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
    ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
    ("fe80::1%eth0", "fe80::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("::1", "::/64"),
    ("", "unknown"),
    (None, "unknown"),
    ("not-an-address", "not-an-address"),
])
def test_client_key(address: str | None, key: str) -> None:
    assert accounts.client_key(address) == key


def test_guessing_from_one_ipv6_slash64_throttled_whatever_the_address(
    service: Service,
) -> None:
    client = Client(make_app(service.config, service.store, lambda: NOW))

    def login(address: str, password: str, user: str = "ops") -> int:
        return client.post(
            "/status/login", data={"user": user, "password": password},
            environ_base={"REMOTE_ADDR": address},
        ).status_code

    store = service.store()
    try:
        accounts.set_user(store, "ops2", accounts.hash_password(PASSWORD), NOW)
    finally:
        store.close()

    # Each guess from a new address of the same /64: counted as one client.
    answers = [login(f"2001:db8:1:2::{n + 1:x}", f"{WRONG}{n}")
               for n in range(accounts.THROTTLE_FAILURES)]
    assert answers == [401] * accounts.THROTTLE_FAILURES
    assert login("2001:db8:1:2:ffff::9", PASSWORD) == 429
    # The /64 is held for every user; another /64 is another client.
    assert login("2001:db8:1:2::abcd", PASSWORD, user="ops2") == 429
    assert login("2001:db8:1:3::1", PASSWORD, user="ops2") == 303

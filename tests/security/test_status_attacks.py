"""Attacks on the status page, over real HTTP: path tricks around the login, hostile text."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import quote

import pytest

from durability.remind import state
from durability.remind.customers import parse_customers_csv
from tests.security.conftest import NOW, Service, cookie_of

HOSTILE_NAME = '<script>alert(1)</script><img src=x onerror="alert(2)">'


@pytest.mark.parametrize("path", [
    "/status", "/status/", "//status", "/%73tatus", "/status/../status", "/status/./",
    "/status%2F", "/status;x", "/STATUS", "/status/login/../../status", "/status%00",
    "/status?page=1&q=x", "/./status", "///status",
])
def test_no_path_spelling_shows_the_status_page_without_a_login(service: Service,
                                                                path: str) -> None:
    answer = service.request("GET", path)
    assert answer.status in (301, 302, 303, 307, 308, 400, 404), (path, answer.status)
    assert "durability status" not in answer.text or "Sign in" in answer.text
    location = answer.headers.get("Location", "")
    assert not location or location.startswith(("/status/login", "/status")), location


def _import_hostile(service: Service) -> None:
    store = service.store()
    try:
        state.import_customers(store, parse_customers_csv(
            "id,email,name,language\nc-1,ola@example.com,Ola,pl\nc-2,bob@example.com,Bob,en\n"
            f'c-9,eve@example.com,"{HOSTILE_NAME.replace(chr(34), chr(34) * 2)}",en\n'),
            NOW - timedelta(days=1))
    finally:
        store.close()


@pytest.mark.parametrize("query", ["", "<script>alert(3)</script>", "' OR 1=1 --",
                                   '"><svg onload=alert(4)>', "%", "_", "\\", "c-9"])
def test_hostile_names_and_searches_are_shown_as_text(
    service: Service, query: str, caplog: pytest.LogCaptureFixture,
) -> None:
    _import_hostile(service)
    cookie = cookie_of(service.login())
    with caplog.at_level(logging.ERROR):
        answer = service.request("GET", f"/status?q={quote(query)}",
                                 headers={"Cookie": f"durability_session={cookie}"})
    assert answer.status == 200
    for raw in ("<script>", "<img src=x", "<svg onload"):
        assert raw not in answer.text
    if not query:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img" in answer.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

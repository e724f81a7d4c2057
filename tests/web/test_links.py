"""Customer links: GET shows a button, POST records; tampered, expired and replayed links."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from durability.remind import state
from tests.web.conftest import LinkWorld

RECEIPT = {"time": "2026-11-24T20:00:00Z", "snapshot_id": "4f2a9c1e", "files": 120,
           "bytes": 123456, "verified": True, "disk": "ab" * 32}


def _customer(world: LinkWorld, customer: str = "c-1") -> Any:
    store = world.store()
    try:
        return state.load_state(store, customer)
    finally:
        store.close()


def _events(world: LinkWorld, customer: str = "c-1") -> list[dict[str, Any]]:
    store = world.store()
    try:
        return state.customer_events(store, customer)
    finally:
        store.close()


def test_handle_link_get_shows_button_changes_nothing(link_world: LinkWorld) -> None:
    response = link_world.client.get(link_world.url("confirm"))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<form method="post"' in page and "Mam już kopię" in page
    assert response.headers["Cache-Control"] == "no-store"
    assert _customer(link_world).last_copy_at is None


def test_handle_link_post_confirm_records_copy_replay_harmless(link_world: LinkWorld) -> None:
    url = link_world.url("confirm")
    response = link_world.client.post(url, data={"go": "1"})
    assert response.status_code == 200
    assert "Dziękujemy" in response.get_data(as_text=True)
    assert _customer(link_world).last_copy_at == link_world.clock[0]
    link_world.clock[0] += timedelta(hours=1)
    again = link_world.client.post(url, data={"go": "1"})
    assert again.status_code == 200
    assert "już użyty" in again.get_data(as_text=True)
    assert _customer(link_world).last_copy_at == link_world.clock[0] - timedelta(hours=1)
    assert [e["kind"] for e in _events(link_world)].count("confirm") == 1


@pytest.mark.parametrize("days", [7, 14, 30])
def test_handle_link_post_snooze_sets_until(link_world: LinkWorld, days: int) -> None:
    response = link_world.client.post(link_world.url("snooze", "c-2"), data={"days": str(days)})
    assert response.status_code == 200
    assert "We will not remind you before" in response.get_data(as_text=True)
    assert _customer(link_world, "c-2").snoozed_until == link_world.clock[0] + timedelta(days)


def test_handle_link_post_snooze_bad_days_400(link_world: LinkWorld) -> None:
    response = link_world.client.post(link_world.url("snooze"), data={"days": "365"})
    assert response.status_code == 400
    assert _customer(link_world).snoozed_until is None


def test_handle_link_one_click_unsubscribe(link_world: LinkWorld) -> None:
    response = link_world.client.post(
        link_world.url("unsubscribe", "c-2"), data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert _customer(link_world, "c-2").unsubscribed_at == link_world.clock[0]
    assert _events(link_world, "c-2")[-1]["source"] == "one-click"


def test_handle_link_unsubscribe_never_expires(link_world: LinkWorld) -> None:
    url = link_world.url("unsubscribe")
    link_world.clock[0] += timedelta(days=800)
    assert link_world.client.post(url, data={"go": "1"}).status_code == 200


def test_handle_link_tampered_403_changes_nothing(link_world: LinkWorld) -> None:
    token = link_world.url("confirm").rsplit("/", 1)[1]
    other = link_world.url("confirm", "c-2").rsplit("/", 1)[1]
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    for bad in (f"/l/confirm/{other[:30]}{token[30:]}", f"/l/confirm/{flipped}",
                f"/l/unsubscribe/{token}", "/l/confirm/garbage"):
        response = link_world.client.post(bad, data={"go": "1"})
        assert response.status_code == 403, bad
        page = response.get_data(as_text=True)
        assert "Na Twoim koncie nic się nie zmieniło." in page
        assert ("Ten link nie pasuje do tej strony" if bad.startswith("/l/unsubscribe/")
                else "Ten link jest niepełny lub uszkodzony") in page
    assert _customer(link_world).last_copy_at is None
    assert _customer(link_world, "c-2").last_copy_at is None
    assert _customer(link_world).unsubscribed_at is None


def test_handle_link_expired_confirm_403(link_world: LinkWorld) -> None:
    url = link_world.url("confirm")
    link_world.clock[0] += timedelta(days=60)
    response = link_world.client.post(url, data={"go": "1"})
    assert response.status_code == 403
    assert "<h1>Ten link już wygasł</h1>" in response.get_data(as_text=True)
    assert _customer(link_world).last_copy_at is None


def test_handle_link_unknown_path_404(link_world: LinkWorld) -> None:
    assert link_world.client.get("/l/delete/abc").status_code == 404


def _post_receipt(world: LinkWorld, url: str, receipt: Any) -> Any:
    return world.client.post(url, data=json.dumps(receipt),
                             content_type="application/json")


def test_receipt_confirms_and_replay_is_idempotent(link_world: LinkWorld) -> None:
    url = link_world.url("confirm")
    response = _post_receipt(link_world, url, {"receipt": RECEIPT})
    assert response.status_code == 200
    assert response.json == {"status": "confirmed", "customer": "c-1",
                             "at": "2026-11-24T20:00:00Z"}
    customer = _customer(link_world)
    assert customer.last_copy_at.isoformat() == "2026-11-24T20:00:00+00:00"
    replay = _post_receipt(link_world, url, {"receipt": RECEIPT})
    assert replay.status_code == 200
    events = [e for e in _events(link_world) if e["kind"] == "confirm"]
    assert len(events) == 1
    assert events[0]["source"] == "helper"
    assert events[0]["detail"]["snapshot_id"] == "4f2a9c1e"


def test_receipt_unverified_422_records_nothing(link_world: LinkWorld) -> None:
    response = _post_receipt(link_world, link_world.url("confirm"),
                             {"receipt": {**RECEIPT, "verified": False}})
    assert response.status_code == 422
    assert "error" in response.json
    assert _customer(link_world).last_copy_at is None


def test_receipt_tampered_token_403_json(link_world: LinkWorld) -> None:
    url = link_world.url("confirm")
    response = _post_receipt(link_world, url[:-3] + "xyz", {"receipt": RECEIPT})
    assert response.status_code == 403
    assert response.json["error"]
    assert response.json["reason"] == "damaged"
    wrong = _post_receipt(link_world, link_world.url("snooze").replace("/snooze/", "/confirm/"),
                          {"receipt": RECEIPT})
    assert wrong.status_code == 403 and wrong.json["reason"] == "action"
    link_world.clock[0] += timedelta(days=61)
    expired = _post_receipt(link_world, url, {"receipt": RECEIPT})
    assert expired.status_code == 403 and "expired" in expired.json["error"]
    assert expired.json["reason"] == "expired"


@pytest.mark.parametrize("receipt", [
    {"receipt": {**RECEIPT, "files": -1}},
    {"receipt": {**RECEIPT, "disk": "not-a-hash"}},
    {"receipt": {**RECEIPT, "time": "yesterday"}},
    {"receipt": {k: v for k, v in RECEIPT.items() if k != "snapshot_id"}},
    {"nothing": 1},
    "not an object",
])
def test_receipt_malformed_400(link_world: LinkWorld, receipt: Any) -> None:
    response = _post_receipt(link_world, link_world.url("confirm"), receipt)
    assert response.status_code == 400
    assert response.json["error"].startswith("malformed receipt")
    assert _customer(link_world).last_copy_at is None


def test_receipt_in_future_capped_at_now(link_world: LinkWorld) -> None:
    future = {**RECEIPT, "time": "2027-01-01T00:00:00Z", "snapshot_id": "ff"}
    response = _post_receipt(link_world, link_world.url("confirm"), {"receipt": future})
    assert response.status_code == 200
    assert _customer(link_world).last_copy_at == link_world.clock[0]

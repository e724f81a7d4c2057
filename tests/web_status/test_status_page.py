"""The status page behind its login: what it shows, and who may see it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from durability.errors import ConfigError
from durability.model import Status
from durability.web.auth import COOKIE, hash_password, parse_users, verify_password
from tests.web_status.conftest import NOW, PASSWORD, StatusWorld, raid_report


def page(world: StatusWorld, path: str = "/status") -> str:
    response = world.client.get(path)
    assert response.status_code == 200, response.status_code
    text: str = response.get_data(as_text=True)
    return text


def test_show_status_unauthenticated_redirected_to_login(status_world: StatusWorld) -> None:
    response = status_world.client.get("/status?page=2")
    assert response.status_code == 303
    assert response.headers["Location"] == "/status/login?next=/status%3Fpage%3D2"
    assert "node-a" not in response.get_data(as_text=True)


def test_do_login_wrong_password_401_no_cookie(status_world: StatusWorld) -> None:
    response = status_world.login(password="guess")
    assert response.status_code == 401
    assert "Wrong user name or password." in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    assert status_world.client.get("/status").status_code == 303


def test_do_login_unknown_user_401(status_world: StatusWorld) -> None:
    assert status_world.login(user="root").status_code == 401


def test_do_login_right_password_only_session_cookie(status_world: StatusWorld) -> None:
    response = status_world.login()
    assert response.status_code == 303
    assert response.headers["Location"] == "/status"
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == 1
    assert cookies[0].startswith(f"{COOKIE}=")
    for flag in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/"):
        assert flag in cookies[0]
    assert status_world.client.get("/status").status_code == 200


def test_show_status_session_expired_back_to_login(status_world: StatusWorld) -> None:
    status_world.login()
    status_world.clock[0] = NOW + timedelta(hours=13)
    assert status_world.client.get("/status").status_code == 303


def test_show_status_user_removed_from_file_refused(status_world: StatusWorld) -> None:
    status_world.login()
    status_world.users_file.write_text("# nobody\n")
    assert status_world.client.get("/status").status_code == 303


def test_do_logout_cookie_cleared(status_world: StatusWorld) -> None:
    status_world.login()
    response = status_world.client.post("/status/logout")
    assert response.status_code == 303
    assert status_world.client.get("/status").status_code == 303


def test_do_login_foreign_next_stays_local(status_world: StatusWorld) -> None:
    response = status_world.client.post(
        "/status/login", data={"user": "ops", "password": PASSWORD, "next": "//evil.example/x"})
    assert response.headers["Location"] == "/status"


def test_show_status_made_up_cookie_back_to_login(status_world: StatusWorld) -> None:
    status_world.client.set_cookie(COOKIE, "ops.9999999999.forged")
    assert status_world.client.get("/status").status_code == 303


def test_verify_password_right_and_wrong() -> None:
    encoded = hash_password("s3cret-enough", iterations=1000)
    assert verify_password("s3cret-enough", encoded)
    assert not verify_password("s3cret-enougH", encoded)
    assert not verify_password("x", "md5$1$2$3")


def test_parse_users_bad_line_config_error_names_line() -> None:
    with pytest.raises(ConfigError, match="line 3: expected USER:HASH"):
        parse_users("# users\nops:pbkdf2_sha256$1000$a$b\nroot:plaintext\n")


def test_do_login_no_users_at_all_401(status_world: StatusWorld) -> None:
    status_world.users_file.unlink()
    assert status_world.client.get("/status/login").status_code == 200
    assert status_world.login().status_code == 401


def test_show_status_fleet_nodes_worst_first(status_world: StatusWorld) -> None:
    status_world.report("node-a", raid_report(NOW, ("md0", Status.OK, "clean")))
    status_world.report("node-b", raid_report(NOW, ("md1", Status.CRITICAL, "degraded: 1 of 2")))
    status_world.report("node-c", raid_report(NOW - timedelta(hours=5),
                                              ("md2", Status.OK, "clean")))
    status_world.login()
    html = page(status_world)
    assert "RAID per node (3 nodes)" in html
    order = [html.index(node) for node in ("node-b", "node-c", "node-a")]
    assert order == sorted(order)
    assert "md1: degraded: 1 of 2" in html
    assert html.count('class="note">stale') == 1


def test_show_status_charts_are_inline_svg_nothing_external(status_world: StatusWorld) -> None:
    status_world.login()
    html = page(status_world)
    assert html.count("<svg") == 3
    assert "Newest snapshot age per source" in html
    assert "Restore test duration" in html and "Restore throughput" in html
    assert re.search(r'<polyline points="[0-9., ]+" fill="none" stroke="#[0-9a-f]{6}"', html)
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script" not in html


def test_show_status_customers_three_two_one(status_world: StatusWorld) -> None:
    status_world.report("node-a", raid_report(NOW, ("md0", Status.OK, "clean")))
    status_world.login()
    html = page(status_world)
    assert "Customers: 3-2-1 (3)" in html
    row = html[html.index("<td>c-1</td>"):]
    row = row[:row.index("</tr>")]
    # RAID mirror on node-a OK; restic-db snapshot WARNING but restore-tested; copy recent.
    assert row.count('badge s-OK') == 2 and 'badge s-WARNING' in row
    assert "restore-tested" in row
    eve = html[html.index("<td>c-3</td>"):]
    assert "no copy on record" in eve[:eve.index("</tr>")]
    bob = html[html.index("<td>c-2</td>"):]
    assert "due since 2026-10-01" in bob[:bob.index("</tr>")]


def test_show_status_customers_paged(status_world: StatusWorld) -> None:
    from durability.remind import state as remind_state
    from durability.remind.customers import parse_customers_csv

    store = status_world.store()
    try:
        rows = "".join(f"x-{i:03d},x{i}@example.com,X {i},en\n" for i in range(25))
        remind_state.import_customers(
            store, parse_customers_csv("id,email,name,language\n" + rows), NOW)
    finally:
        store.close()
    status_world.login()
    html = page(status_world, "/status?page=2")
    assert "page 2 of 3" in html
    assert "<td>x-007</td>" in html and "<td>x-006</td>" not in html

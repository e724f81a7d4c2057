"""Attacks on the status page login, over real HTTP: guessing, floods, stale sessions, CSRF."""

from __future__ import annotations

import base64
import hashlib
import logging
import statistics
import threading
import time
from pathlib import Path

import pytest

from durability.web import accounts
from tests.security.conftest import NOW, PASSWORD, Service, cookie_of

WRONG = "Wrong-Guess-99"


def _status(service: Service, cookie: str, **options: object) -> int:
    return service.request("GET", "/status", headers={"Cookie": f"durability_session={cookie}"},
                           **options).status  # type: ignore[arg-type]


def test_guessing_from_one_address_throttled_then_right_password_refused(
    service: Service,
) -> None:
    answers = [service.login(password=f"{WRONG}{n}").status
               for n in range(accounts.THROTTLE_FAILURES)]
    assert answers == [401] * accounts.THROTTLE_FAILURES
    throttled = service.login(password=f"{WRONG}x")
    assert throttled.status == 429 and int(throttled.headers["Retry-After"]) > 0
    # The right password from the same address waits too: guessing gained nothing.
    assert service.login().status == 429
    # Another address may still log in (its own count, the user's count below the limit
    # since the 11th attempt was never checked).
    assert service.login(source="127.0.0.2").status in (303, 429)


def test_guessing_one_user_from_many_addresses_throttled(service: Service) -> None:
    for n in range(accounts.THROTTLE_FAILURES):
        assert service.login(password=WRONG, source=f"127.0.1.{n + 1}").status == 401
    assert service.login(source="127.0.2.1").status == 429
    # Another user from a fresh address is not held back.
    store = service.store()
    try:
        accounts.set_user(store, "ops2", accounts.hash_password(PASSWORD), NOW)
    finally:
        store.close()
    assert service.login(user="ops2", source="127.0.2.2").status == 303


def test_throttle_holds_across_restart_and_a_second_service(service: Service) -> None:
    for n in range(accounts.THROTTLE_FAILURES):
        assert service.login(password=WRONG, source=f"127.0.3.{n + 1}").status == 401
    service.stop_all()
    restarted = service.start()
    assert service.login(source="127.0.4.1", port=restarted).status == 429
    second = service.start()
    assert service.login(source="127.0.4.2", port=second).status == 429
    # Once the window has passed, the right password works again.
    service.clock[0] = NOW.replace(hour=NOW.hour + 1)
    assert service.login(source="127.0.4.3", port=second).status == 303


def test_failed_login_logged_with_user_and_address_never_the_password(
    service: Service, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        assert service.login(user="mallory", password="Sekret-Guess-123",
                             source="127.0.5.9").status == 401
    assert "mallory" in caplog.text and "127.0.5.9" in caplog.text
    assert "Sekret-Guess-123" not in caplog.text


def test_logout_ends_the_session_on_the_server(service: Service) -> None:
    cookie = cookie_of(service.login())
    assert _status(service, cookie) == 200
    answer = service.request("POST", "/status/logout",
                             headers={"Cookie": f"durability_session={cookie}"})
    assert answer.status == 303
    # The same cookie, replayed after logout (as a copied cookie would be): refused.
    assert _status(service, cookie) == 303


def test_removed_user_and_changed_password_end_sessions(service: Service, cli: object,
                                                         tmp_path: Path) -> None:
    first = cookie_of(service.login())
    store = service.store()
    try:
        accounts.set_user(store, "ops", accounts.hash_password("New-Password-77"), NOW)
    finally:
        store.close()
    assert _status(service, first) == 303
    second = cookie_of(service.login(password="New-Password-77"))
    assert _status(service, second) == 200
    assert service.config.path
    result = cli("--config", service.config.path, "users", "remove", "ops")  # type: ignore[operator]
    assert result.code == 0, result.stderr
    assert _status(service, second) == 303
    assert service.login(password="New-Password-77").status == 401


def test_made_up_or_old_signed_cookie_refused(service: Service) -> None:
    for value in ("b3Bz.9999999999.forged", "x" * 43, ""):
        assert _status(service, value) == 303


def test_cross_site_login_and_logout_refused(service: Service) -> None:
    evil = {"Origin": "https://evil.example"}
    answer = service.login(headers=evil)
    assert answer.status == 403 and "Set-Cookie" not in answer.headers
    answer = service.login(headers={"Referer": "https://evil.example/page"})
    assert answer.status == 403
    answer = service.login(headers={"Origin": "null"})
    assert answer.status == 403
    cookie = cookie_of(service.login(headers={"Origin": f"http://127.0.0.1:{service.port}"}))
    answer = service.request("POST", "/status/logout",
                             headers={"Cookie": f"durability_session={cookie}", **evil})
    assert answer.status == 403
    assert _status(service, cookie) == 200
    answer = service.login(headers={"Origin": "https://links.example"})
    assert answer.status == 303


def test_users_file_pbkdf2_hash_verifies_and_is_upgraded(service: Service,
                                                         tmp_path: Path) -> None:
    from durability.config import load_config

    salt = b"0123456789abcdef"
    digest = hashlib.pbkdf2_hmac("sha256", b"Legacy-Pass-31", salt, 1000)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    users = tmp_path / "users"
    users.write_text(f"old:pbkdf2_sha256$1000${b64(salt)}${b64(digest)}\n")
    assert service.config.path
    path = Path(service.config.path)
    path.write_text(path.read_text() + f'[status]\nusers_file = "{users}"\n')
    service.config = load_config(str(path))
    service.stop_all()
    service.port = service.start()
    assert service.login(user="old", password="Legacy-Pass-32").status == 401
    cookie = cookie_of(service.login(user="old", password="Legacy-Pass-31"))
    store = service.store()
    try:
        stored = accounts.get_user(store, "old")
    finally:
        store.close()
    assert stored is not None and stored.password_hash.startswith("scrypt:")
    assert _status(service, cookie) == 200
    assert service.login(user="old", password="Legacy-Pass-31").status == 303
    # The line removed from the file: that account is over.
    users.write_text("# nobody\n")
    assert _status(service, cookie) == 303


def test_customer_links_stay_fast_during_a_login_flood(service: Service) -> None:
    """A flood of bad logins is answered 429 while customer links keep answering.

    The figures (link latency with and without the flood) are printed for the record;
    no timing is asserted.
    """
    link = service.link("confirm")
    quiet = []
    for _ in range(20):
        started = time.perf_counter()
        assert service.request("GET", link).status == 200
        quiet.append(time.perf_counter() - started)
    flood_answers: list[int] = []
    lock = threading.Lock()

    def flood(worker: int) -> None:
        for n in range(40):  # bounded: 16 workers x 40 attempts
            status = service.login(user=f"u{worker}", password=f"{WRONG}{n}",
                                   source=f"127.0.9.{worker % 2 + 1}").status
            with lock:
                flood_answers.append(status)

    workers = [threading.Thread(target=flood, args=(w,)) for w in range(16)]
    for worker in workers:
        worker.start()
    during = []
    while any(w.is_alive() for w in workers) and len(during) < 200:
        started = time.perf_counter()
        assert service.request("GET", link).status == 200
        during.append(time.perf_counter() - started)
    for worker in workers:
        worker.join(120)
    assert len(flood_answers) == 16 * 40
    assert set(flood_answers) <= {401, 429}
    assert flood_answers.count(429) >= 16 * 40 - 2 * accounts.THROTTLE_FAILURES - 16
    assert during, "no link request completed while the flood ran"
    print(f"\nlink GET median {statistics.median(quiet) * 1000:.1f} ms quiet, "
          f"{statistics.median(during) * 1000:.1f} ms during the flood "
          f"(max {max(during) * 1000:.1f} ms, {len(during)} requests; "
          f"{flood_answers.count(429)} of {len(flood_answers)} flood logins answered 429)")


@pytest.mark.parametrize("next_url", ["/status\r\nSet-Cookie: x=1", "/status\nX: y",
                                      "/status\x00", "/status\t//evil.example"])
def test_login_next_with_control_characters_goes_to_status(
    service: Service, next_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        answer = service.form("/status/login",
                              {"user": "ops", "password": PASSWORD, "next": next_url})
    assert answer.status == 303 and answer.headers["Location"] == "/status"
    assert "x=1" not in answer.headers.get_all("Set-Cookie", [""])[0]
    assert _status(service, cookie_of(answer)) == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

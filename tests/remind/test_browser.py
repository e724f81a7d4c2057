"""A customer clicks the confirm link of a real reminder in headless Chromium.

The email comes from `durability remind` through aiosmtpd; its confirm link points at
the waitress server of `durability serve`'s app; after the click, reminders stop.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from durability.config import load_config
from durability.model import isoformat_z, now_utc
from durability.state.store import open_store
from durability.web.app import make_app
from durability.web.server import make_server
from tests.remind.conftest import MailServer, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]


@pytest.fixture
def browser() -> Iterator[Any]:
    """Return a Playwright Chromium browser (Debian's), closed at teardown."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.mark.slow
def test_confirm_clicked_in_chromium_stops_reminders(
    cli: Any, mail_server: Callable[..., MailServer], remind_config: Callable[..., Path],
    customers_csv: Callable[..., Path], browser: Any,
) -> None:
    web_port = free_port()
    mail = mail_server()
    config_path = remind_config(mail)
    text = config_path.read_text(encoding="utf-8").replace(
        'base_url = "https://links.hosting.example"', f'base_url = "http://127.0.0.1:{web_port}"')
    config_path.write_text(text, encoding="utf-8")
    csv = customers_csv(["c-1,ola@example.com,Ola Żak,pl,,"])
    assert cli("--config", config_path, "customers", "import", csv).code == 0
    sent = cli("--config", config_path, "remind")
    assert "1 sent" in sent.stdout, sent.stdout + sent.stderr
    body = mail.messages[0].get_body(("html",))
    assert body is not None
    confirm = re.search(r'href="(http://127\.0\.0\.1:\d+/l/confirm/[^"]+)"', body.get_content())
    assert confirm is not None

    config = load_config(str(config_path))
    app = make_app(config, lambda: open_store(config.state.path, config.state.url))
    server = make_server(app, "127.0.0.1", web_port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        page = browser.new_page()
        page.goto(confirm.group(1))
        assert "Potwierdź własną kopię zapasową" in page.title()
        page.get_by_role("button", name="Mam już kopię").click()
        page.wait_for_load_state()
        assert "Dziękujemy" in page.content()
    finally:
        server.close()
        thread.join(10)

    shown = cli("--config", config_path, "customers", "show", "c-1")
    assert "confirm     link" in shown.stdout
    # A week and 25 days on (the step-2 and step-3 times), nothing more is sent.
    for days in (7, 25):
        later = isoformat_z(now_utc() + timedelta(days=days))
        again = cli("--config", config_path, "remind", "--now", later)
        assert "0 due, 0 sent" in again.stdout, again.stdout
    assert mail.recipients() == ["ola@example.com"]


@pytest.mark.slow
@pytest.mark.parametrize("language", ["pl", "en"])
def test_email_html_fits_a_phone_screen(browser: Any, language: str) -> None:
    """At 390 px the email needs no sideways scrolling: the helper command box wraps."""
    import email
    import email.policy
    from datetime import UTC, datetime

    from durability.remind.messages import Sender, render_reminder
    from durability.remind.planner import Planned
    from durability.remind.records import CustomerState

    now = datetime(2026, 11, 25, 10, tzinfo=UTC)
    customer = CustomerState(id="c-100234", email="a@example.com", name="A", language=language,
                             interval_days=None, last_copy_at=None, created_at=now)
    sender = Sender("Hosting Żółw", "hosting", "kopie@hosting.example", None,
                    "https://links.hosting.example", b"s" * 32,
                    helper_url="https://hosting.example/helper")
    raw = render_reminder(Planned(customer, now, 1, now), sender, now).as_bytes()
    body = email.message_from_bytes(raw, policy=email.policy.default).get_body(("html",))
    assert body is not None
    page = browser.new_page(viewport={"width": 390, "height": 800})
    page.set_content(body.get_content())
    width = page.evaluate("document.documentElement.scrollWidth")
    box = page.locator("div", has_text="durability-helper copy").last
    assert box.bounding_box()["width"] <= 390
    assert width <= 390, width
    buttons = page.get_by_role("link").all()
    assert len(buttons) == 4  # the instructions and the three actions
    for button in buttons:
        edge = button.bounding_box()
        assert edge["x"] + edge["width"] <= 390

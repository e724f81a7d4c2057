"""Message rendering: Polish plural forms, dates, MIME structure and headers."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from durability.remind.messages import Sender, format_day, plural, render_reminder
from durability.remind.planner import Planned
from durability.remind.records import CustomerState
from durability.web.signing import verify_token

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SECRET = b"0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(("count", "word", "expected"), [
    (1, "day", "1 dzień"), (2, "day", "2 dni"), (5, "day", "5 dni"), (22, "day", "22 dni"),
    (1, "copy", "1 kopia"), (3, "copy", "3 kopie"), (5, "copy", "5 kopii"),
    (12, "copy", "12 kopii"), (22, "copy", "22 kopie"), (25, "copy", "25 kopii"),
])
def test_plural_polish_forms(count: int, word: str, expected: str) -> None:
    assert plural("pl", count, word) == expected


def test_plural_english_forms() -> None:
    assert plural("en", 1, "day") == "1 day"
    assert plural("en", 5, "copy") == "5 copies"


def test_format_day_polish_genitive_month() -> None:
    assert format_day(datetime(2026, 10, 1, tzinfo=UTC), "pl") == "1 października 2026"
    assert format_day(datetime(2026, 10, 1, tzinfo=UTC), "en") == "October 1, 2026"


def _planned(language: str, copies: int = 0, step: int = 1) -> Planned:
    customer = CustomerState(
        id="c-7", email="ola@example.com", name="Ola Żak", language=language,
        interval_days=None, last_copy_at=NOW - timedelta(days=32),
        created_at=NOW - timedelta(days=300), confirmed_copies=copies,
    )
    start = NOW - timedelta(days=2)
    return Planned(customer, start, step, start)


SENDER = Sender(provider="Hosting Żółw", service="hosting", from_addr="kopie@hosting.example",
                reply_to=None, base_url="https://links.example", secret=SECRET,
                unsubscribe_mailto=None)


def test_render_reminder_polish_text_html_headers() -> None:
    raw = render_reminder(_planned("pl", copies=3), SENDER, NOW).as_bytes()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"=?utf-8?" in raw  # Polish subject and names encoded per RFC 2047
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == "Hosting Żółw: zrób własną kopię zapasową swoich danych"
    assert message["List-Unsubscribe"].startswith("<https://links.example/l/unsubscribe/")
    assert "mailto" not in message["List-Unsubscribe"]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "24 października 2026, 32 dni temu" in text
    assert "Odnotowane dotąd: 3 kopie." in text
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Ola Żak" in html
    assert "<script" not in html and "<img" not in html


def _parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_render_reminder_links_signed_for_customer() -> None:
    message = _parsed(render_reminder(_planned("en"), SENDER, NOW).as_bytes())
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    confirm = next(w for w in text.split() if "/l/confirm/" in w)
    token = confirm.rsplit("/", 1)[1]
    link = verify_token(SECRET, token, "confirm", NOW + timedelta(days=59))
    assert link.customer_id == "c-7"


def test_render_reminder_name_with_html_escaped_in_html_only() -> None:
    planned = _planned("en")
    customer = replace(planned.customer, name="<b>Bob</b> & Co")
    message = _parsed(render_reminder(replace(planned, customer=customer), SENDER, NOW)
                      .as_bytes())
    assert message["To"].addresses[0].display_name == "<b>Bob</b> & Co"
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "&lt;b&gt;Bob&lt;/b&gt; &amp; Co" in html
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Hello <b>Bob</b> & Co," in text

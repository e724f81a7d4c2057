"""Message rendering: Polish plural forms, dates, MIME structure and headers."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from durability.remind.messages import Sender, format_day, plural, render_reminder
from durability.remind.planner import Planned
from durability.remind.records import CustomerState, OutboxEntry
from durability.web.signing import verify_token

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SECRET = b"0123456789abcdef0123456789abcdef"


# Babel's Polish rules: 1 is "one"; 2-4, 22-24, 102-104 "few"; 5-21 (with 12-14),
# 25-31, 111-114 "many".
POLISH = {
    "day": {1: "1 dzień", 2: "2 dni", 5: "5 dni", 12: "12 dni", 22: "22 dni"},
    "copy": {1: "1 kopia", 2: "2 kopie", 3: "3 kopie", 4: "4 kopie", 5: "5 kopii",
             11: "11 kopii", 12: "12 kopii", 13: "13 kopii", 14: "14 kopii", 21: "21 kopii",
             22: "22 kopie", 23: "23 kopie", 24: "24 kopie", 25: "25 kopii", 104: "104 kopie",
             112: "112 kopii"},
    "copy_acc": {1: "1 kopię", 3: "3 kopie", 5: "5 kopii", 12: "12 kopii", 22: "22 kopie"},
    "reminder": {1: "1 przypomnienie", 2: "2 przypomnienia", 4: "4 przypomnienia",
                 5: "5 przypomnień", 12: "12 przypomnień", 14: "14 przypomnień",
                 22: "22 przypomnienia", 24: "24 przypomnienia", 25: "25 przypomnień"},
}


@pytest.mark.parametrize(("word", "count"),
                         [(w, c) for w, table in POLISH.items() for c in table])
def test_plural_polish_forms(word: str, count: int) -> None:
    assert plural("pl", count, word) == POLISH[word][count]


def test_plural_polish_follows_babel_categories() -> None:
    from babel import Locale

    rule = Locale.parse("pl").plural_form
    assert [rule(n) for n in (1, 2, 4, 5, 12, 14, 22, 24)] == [
        "one", "few", "few", "many", "many", "many", "few", "few"]


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
    assert message["Subject"] == "Hosting Żółw: przypomnienie o własnej kopii zapasowej"
    assert message["List-Unsubscribe"].startswith("<https://links.example/l/unsubscribe/")
    assert "mailto" not in message["List-Unsubscribe"]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.replace("\r\n", "\n").startswith("Dzień dobry,\n\nPiszemy w sprawie Twojego konta c-7")
    assert "potwierdzono 24 października 2026, czyli 32 dni temu." in " ".join(text.split())
    assert "Do tej pory potwierdzono łącznie 3 kopie." in " ".join(text.split())
    assert "dostawca: Hosting Żółw)." in " ".join(text.split())
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Ola Żak" not in html and "Ola Żak" not in text  # the name is in To only
    assert "<script" not in html and "<img" not in html


@pytest.mark.parametrize(("days", "said"), [(0, "czyli dzisiaj."), (1, "czyli wczoraj."),
                                            (2, "czyli 2 dni temu.")])
def test_polish_recent_copy_said_in_words(days: int, said: str) -> None:
    planned = _planned("pl", copies=1)
    customer = replace(planned.customer, last_copy_at=NOW - timedelta(days=days))
    text, html = _bodies(replace(planned, customer=customer))
    assert said in text and said in html
    assert "Była to Twoja pierwsza potwierdzona kopia." in text


def test_days_since_the_copy_counted_by_calendar_date() -> None:
    # 25 hours, but two dates apart: the email shows the date, so not "wczoraj".
    now = datetime(2026, 10, 26, 0, 30, tzinfo=UTC)
    planned = _planned("pl", copies=2)
    customer = replace(planned.customer,
                       last_copy_at=datetime(2026, 10, 24, 23, 30, tzinfo=UTC))
    message = email.message_from_bytes(
        render_reminder(replace(planned, customer=customer), SENDER, now).as_bytes(),
        policy=email.policy.default)
    text = " ".join(message.get_body(("plain",)).get_content().split())  # type: ignore[union-attr]
    assert "potwierdzono 24 października 2026, czyli 2 dni temu." in text
    customer = replace(customer, last_copy_at=datetime(2026, 10, 25, 0, 10, tzinfo=UTC))
    message = email.message_from_bytes(
        render_reminder(replace(planned, customer=customer), SENDER, now).as_bytes(),
        policy=email.policy.default)
    text = " ".join(message.get_body(("plain",)).get_content().split())  # type: ignore[union-attr]
    assert "potwierdzono 25 października 2026, czyli wczoraj." in text


def test_polish_html_keeps_one_letter_words_and_numbers_with_the_next_word() -> None:
    message = _parsed(render_reminder(_planned("pl", copies=3), SENDER, NOW).as_bytes())
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "w\u00a0sprawie Twojego konta" in html and "32\u00a0dni temu" in html
    assert "3\u00a0kopie." in html and "z\u00a0linków" in html
    third = _parsed(render_reminder(replace(_planned("pl"), step=3), SENDER, NOW).as_bytes())
    later = third.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "nr\u00a03\u00a0(łącznie wysyłamy najwyżej 6)" in later
    # Tags and attributes are left alone; the text part has plain spaces.
    assert 'style="display:inline-block;margin:0 8px 8px 0;' in html
    assert "<a href=" in html and "<a\u00a0" not in html
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "\u00a0" not in text


@pytest.mark.parametrize(("days", "said"), [(0, "confirmed on"), (1, "confirmed on")])
def test_english_recent_copy_said_in_words(days: int, said: str) -> None:
    planned = _planned("en", copies=1)
    customer = replace(planned.customer, last_copy_at=NOW - timedelta(days=days))
    text, html = _bodies(replace(planned, customer=customer))
    word = "today." if days == 0 else "yesterday."
    for body in (" ".join(text.split()), html):
        assert said in body and word in body
        assert "0 days ago" not in body and "1 day ago" not in body


def _bodies(planned: Planned, sender: Sender = SENDER) -> tuple[str, str]:
    message = email.message_from_bytes(render_reminder(planned, sender, NOW).as_bytes(),
                                       policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    # Paragraphs are wrapped: compare words, not line breaks.
    return " ".join(text.split()), " ".join(html.split())


def _sentences(text: str) -> set[str]:
    import re

    flat = " ".join(text.split())
    return {part.strip() for part in re.split(r"(?<=[.:?])\s+", flat)
            if part.strip() and "/l/" not in part}


@pytest.mark.parametrize("language", ["pl", "en"])
def test_later_steps_say_more_than_the_first(language: str) -> None:
    first = _planned(language, step=1)
    start = first.period_start
    sent = (OutboxEntry("k1", start, 1, "sent", start, "ola@example.com"),
            OutboxEntry("k2", start, 2, "sent", start + timedelta(days=7), "ola@example.com"))
    third = replace(first, step=3, customer=replace(first.customer, outbox=sent))
    one, _ = _bodies(first)
    three, _ = _bodies(third)
    new = _sentences(three) - _sentences(one)
    # The step, the previous reminder, what is at stake now, how many may follow.
    assert len(new) >= 5, new
    expected = {
        "pl": ["To przypomnienie nr 3 (łącznie wysyłamy najwyżej 6).", "Poprzednie przypomnienie wysłaliśmy 30 listopada 2026",
               "wyślemy jeszcze najwyżej 3 przypomnienia.",
               "Wszystko, co się zmieniło od ostatniej własnej kopii, jest zapisane tylko u nas."],
        "en": ["this is reminder 3 of at most 6.", "We sent the previous reminder on November 30, 2026",
               "we will send no more than 3 reminders after this one.",
               "Everything that has changed since that copy exists only on our side."],
    }[language]
    for phrase in expected:
        assert phrase in three and phrase not in one
    assert ("wyślemy jeszcze najwyżej 5 przypomnień." if language == "pl"
            else "we will send no more than 5 reminders after this one.") in one
    last, _ = _bodies(replace(third, step=6))
    assert ("To ostatnie przypomnienie w tej sprawie." if language == "pl"
            else "This is the last reminder about it.") in last


@pytest.mark.parametrize("language", ["pl", "en"])
def test_no_copy_on_record_said_plainly(language: str) -> None:
    planned = _planned(language)
    planned = replace(planned, customer=replace(planned.customer, last_copy_at=None))
    text, html = _bodies(planned)
    sentence = ("Nie mamy jeszcze od Ciebie potwierdzenia, że masz własną kopię swoich danych."
                if language == "pl" else "We have no confirmation yet of a copy of your data on a disk of your own.")
    assert sentence in text and sentence in html


URGENT = {"pl": ["teraz", "pilne", "natychmiast", "zaległ", "ostatnia szansa"],
          "en": [" now", "urgent", "immediately", "overdue", "last chance", "act "]}


@pytest.mark.parametrize("language", ["pl", "en"])
def test_not_phishing_shaped(language: str) -> None:
    sender = replace(SENDER, helper_url="https://www.hosting.example/helper",
                     panel_url="https://panel.hosting.example/login")
    text, html = _bodies(_planned(language), sender)
    for word in URGENT[language]:
        assert word not in text.lower() and word not in html.lower(), word
    # Three real buttons, each an https link to the links domain, which is named.
    buttons = re.findall(r'<a href="([^"]+)" style="display:inline-block[^"]*">([^<]+)</a>', html)
    assert [url.split("/")[4] for url, _ in buttons] == ["confirm", "snooze", "unsubscribe"]
    assert all(url.startswith("https://links.example/l/") for url, _ in buttons)
    assert "<b>links.example</b>" in html
    # The helper's instructions link names its domain; no bare "(how)" link text.
    assert re.search(r'<a href="https://www.hosting.example/helper">[^<]*www.hosting.example</a>',
                     html)
    # The helper command is in a box that wraps.
    assert re.search(r'<div style="[^"]*white-space:pre-wrap[^"]*word-break:break-all[^"]*">'
                     r"durability-helper copy ", html)
    # How to check the mail is genuine: no passwords asked, log in to the panel yourself.
    check = {"pl": ["nigdy nie prosimy o hasła", "zaloguj się do panelu klienta samodzielnie",
                    "panel.hosting.example"],
             "en": ["we never ask for passwords", "log in to the customer panel yourself",
                    "panel.hosting.example"]}[language]
    flat_text, flat_html = " ".join(text.split()), " ".join(html.split())
    for phrase in check:
        assert phrase in flat_text and phrase in flat_html, phrase



def test_polish_is_gender_neutral_and_uses_ty() -> None:
    first = _planned("pl", copies=2)
    start = first.period_start
    sent = (OutboxEntry("k1", start, 1, "sent", start, "ola@example.com"),)
    texts = []
    for step in (1, 2, 6):
        planned = replace(first, step=step,
                          customer=replace(first.customer, outbox=sent if step > 1 else ()))
        texts.extend(_bodies(planned))
    words = " ".join(texts)
    past_second_person = re.findall(r"\b\w+(?:łeś|łaś|łem|łam)\b", words)
    assert past_second_person == []
    for formal in ("Państw", " Pan ", " Pani "):
        assert formal not in words


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


def test_render_reminder_provider_with_html_escaped_in_html_only() -> None:
    planned = _planned("en")
    customer = replace(planned.customer, name="<b>Bob</b> & Co")
    sender = replace(SENDER, provider="<i>Hosting</i> & Co")
    message = _parsed(render_reminder(replace(planned, customer=customer), sender, NOW)
                      .as_bytes())
    assert message["To"].addresses[0].display_name == "<b>Bob</b> & Co"
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "&lt;i&gt;Hosting&lt;/i&gt; &amp; Co" in html and "<i>Hosting" not in html
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "This is <i>Hosting</i> & Co writing" in text


@pytest.mark.parametrize(("configured", "name", "address"), [
    ("kopie@hosting.example", "Hosting Żółw", "kopie@hosting.example"),
    ("Kopie Żółwia <kopie@hosting.example>", "Kopie Żółwia", "kopie@hosting.example"),
    ('"Hosting, Backups" <backup@hosting.example>', "Hosting, Backups",
     "backup@hosting.example"),
])
def test_from_with_or_without_a_name(configured: str, name: str, address: str) -> None:
    message = _parsed(render_reminder(_planned("pl"), replace(SENDER, from_addr=configured),
                                      NOW).as_bytes())
    sender = message["From"].addresses
    assert len(sender) == 1 and not message["From"].defects
    assert (sender[0].display_name, sender[0].addr_spec) == (name, address)
    message_id = message["Message-ID"]
    assert not message_id.defects
    assert re.fullmatch(r"<remind\.[0-9a-f]{32}@hosting\.example>", str(message_id))


@pytest.mark.parametrize("language", ["pl", "en"])
def test_text_part_wrapped_links_and_command_kept_whole(language: str) -> None:
    sender = replace(SENDER, helper_url="https://www.hosting.example/helper",
                     panel_url="https://panel.hosting.example")
    raw = render_reminder(_planned(language, copies=2), sender, NOW).as_bytes()
    text = _parsed(raw).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    text = text.replace("\r\n", "\n")
    for line in text.splitlines():
        assert len(line) <= 76 or "https://" in line, line
        # No number or one-letter word left hanging at the end of a line.
        assert not re.search(r"(?:^|\s)(?:\d+|[aiouwzAIOUWZ])$", line), line
    assert re.search(r"^  https://links\.example/l/confirm/\S+$", text, re.MULTILINE)
    assert re.search(r"^  durability-helper copy \S+ --confirm-url https://\S+$", text,
                     re.MULTILINE)


def test_last_step_subject_says_it_is_the_last() -> None:
    planned = replace(_planned("pl"), step=6)
    assert _parsed(render_reminder(planned, SENDER, NOW).as_bytes())["Subject"] == \
        "Hosting Żółw: ostatnie przypomnienie o własnej kopii zapasowej"

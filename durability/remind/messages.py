"""Render reminder emails: Jinja2 templates, Babel plural forms and dates, MIME assembly.

Pure: everything a message needs comes in (customer, step, links, `now`); nothing is
read or sent here. A message is `multipart/alternative` (text, then HTML) in UTF-8,
with a deterministic Message-ID and RFC 8058 one-click unsubscribe headers.
"""

from __future__ import annotations

import email.charset
import email.policy
import functools
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr
from typing import Any, cast
from urllib.parse import quote

from durability.remind.planner import Planned, message_id
from durability.web.signing import link_url, sign_token

# CRLF line ends; long unbreakable values (signed URLs) are never folded.
POLICY = email.policy.compat32.clone(linesep="\r\n", max_line_length=998)
_UTF8_QP = email.charset.Charset("utf-8")
_UTF8_QP.header_encoding = email.charset.BASE64
_UTF8_QP.body_encoding = email.charset.QP

WORDS: dict[str, dict[str, dict[str, str]]] = {
    "en": {
        "day": {"one": "day", "other": "days"},
        "copy": {"one": "copy", "other": "copies"},
    },
    "pl": {
        "day": {"one": "dzień", "few": "dni", "many": "dni", "other": "dnia"},
        "copy": {"one": "kopia", "few": "kopie", "many": "kopii", "other": "kopii"},
    },
}

SUBJECTS = {
    "en": ("{provider}: please copy your backups to your own disk",
           "{provider}: reminder {step}, your own backup copy is overdue"),
    "pl": ("{provider}: zrób własną kopię zapasową swoich danych",
           "{provider}: przypomnienie {step}, własna kopia zapasowa jest zaległa"),
}


@dataclass(frozen=True)
class Sender:
    """Who writes and where links point; the same for every message of a run."""

    provider: str
    service: str
    from_addr: str
    reply_to: str | None
    base_url: str
    secret: bytes
    unsubscribe_mailto: str | None = None
    helper_url: str | None = None


def plural(language: str, count: int, word: str) -> str:
    """Return "COUNT WORD" with the plural form of the language (2 dni, 5 kopii)."""
    form = _plural_form(language, count)
    forms = WORDS.get(language, WORDS["en"])[word]
    return f"{count} {forms.get(form, forms['other'])}"


@functools.lru_cache(maxsize=8)
def _locale(language: str) -> Any:
    from babel import Locale

    return Locale.parse(language)


def _plural_form(language: str, count: int) -> str:
    return str(_locale(language).plural_form(count))


def format_day(moment: datetime, language: str) -> str:
    """Return a date as the language writes it (1 października 2026, October 1, 2026)."""
    from babel.dates import format_date

    return str(format_date(moment.date(), format="long", locale=language))


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("durability.remind", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def _header_text(value: str, name: str) -> str:
    """Return a header value: as is when ASCII, else RFC 2047 encoded-words (folded)."""
    if value.isascii():
        return value
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


def links_for(sender: Sender, customer_id: str, now: datetime) -> dict[str, str]:
    """Return the signed confirm, snooze and unsubscribe URLs for a customer."""
    return {
        f"{action}_url": link_url(sender.base_url, action,
                                  sign_token(sender.secret, customer_id, action, now))
        for action in ("confirm", "snooze", "unsubscribe")
    }


def render_reminder(planned: Planned, sender: Sender, now: datetime) -> Message:
    """Given a planned reminder, the sender and `now`, return the complete email."""
    customer = planned.customer
    language = customer.language if customer.language in WORDS else "en"
    links = links_for(sender, customer.id, now)
    subject = SUBJECTS[language][0 if planned.step == 1 else 1].format(
        provider=sender.provider, step=planned.step)
    days = (now - customer.last_copy_at).days if customer.last_copy_at else 0
    values = {
        "name": customer.name,
        "provider": sender.provider,
        "service": sender.service,
        "customer_id": customer.id,
        "last_copy": format_day(customer.last_copy_at, language)
        if customer.last_copy_at else None,
        "days": days,
        "copies": customer.confirmed_copies,
        "helper_url": sender.helper_url,
        "subject": subject,
        "plural": lambda count, word: plural(language, count, word),
        **links,
    }
    env = _environment()
    text = env.get_template(f"{language}.txt.j2").render(values)
    html = env.get_template(f"{language}.html.j2").render(values)

    # Built with the compat32 MIME classes and headers encoded here: the modern policy
    # re-parses every header it is given, which made rendering most of a send's cost.
    message = MIMEMultipart("alternative", policy=POLICY)
    message["Subject"] = _header_text(subject, "Subject")
    message["From"] = formataddr((sender.provider, sender.from_addr), "utf-8")
    message["To"] = formataddr((customer.name, customer.email), "utf-8")
    if sender.reply_to:
        message["Reply-To"] = sender.reply_to
    message["Date"] = format_datetime(now)
    domain = sender.from_addr.rpartition("@")[2] or "localhost"
    message["Message-ID"] = message_id(planned.key, domain)
    unsubscribe = [f"<{links['unsubscribe_url']}>"]
    if sender.unsubscribe_mailto:
        unsubscribe.append(
            # The subject carries the opaque unsubscribe token, never the customer id.
            f"<mailto:{sender.unsubscribe_mailto}?subject="
            f"{quote('unsubscribe ' + links['unsubscribe_url'].rpartition('/')[2])}>")
    message["List-Unsubscribe"] = ", ".join(unsubscribe)
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    # MIMEText takes a Charset object too (typeshed only knows the name form).
    charset = cast(str, _UTF8_QP)
    message.attach(MIMEText(text, "plain", charset, policy=POLICY))
    message.attach(MIMEText(html, "html", charset, policy=POLICY))
    return message

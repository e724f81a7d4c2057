"""Render reminder emails: Jinja2 templates, Babel plural forms and dates, MIME assembly.

Pure: everything a message needs comes in (customer, step, links, `now`); nothing is
read or sent here. A message is `multipart/alternative` (text, then HTML) in UTF-8,
with a deterministic Message-ID and RFC 8058 one-click unsubscribe headers.
"""

from __future__ import annotations

import email.policy
import functools
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

from durability.remind.planner import Planned, message_id
from durability.web.signing import link_url, sign_token

# Long unbreakable values (signed URLs) must not be folded into encoded-words.
POLICY = email.policy.SMTP.clone(max_line_length=998)

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


def links_for(sender: Sender, customer_id: str, now: datetime) -> dict[str, str]:
    """Return the signed confirm, snooze and unsubscribe URLs for a customer."""
    return {
        f"{action}_url": link_url(sender.base_url, action,
                                  sign_token(sender.secret, customer_id, action, now))
        for action in ("confirm", "snooze", "unsubscribe")
    }


def render_reminder(planned: Planned, sender: Sender, now: datetime) -> EmailMessage:
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

    message = EmailMessage(policy=POLICY)
    message["Subject"] = subject
    message["From"] = Address(sender.provider, addr_spec=sender.from_addr)
    message["To"] = Address(customer.name, addr_spec=customer.email)
    if sender.reply_to:
        message["Reply-To"] = sender.reply_to
    message["Date"] = format_datetime(now)
    domain = sender.from_addr.rpartition("@")[2] or "localhost"
    message["Message-ID"] = message_id(planned.key, domain)
    unsubscribe = [f"<{links['unsubscribe_url']}>"]
    if sender.unsubscribe_mailto:
        unsubscribe.append(
            f"<mailto:{sender.unsubscribe_mailto}?subject={quote('unsubscribe ' + customer.id)}>")
    message["List-Unsubscribe"] = ", ".join(unsubscribe)
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message

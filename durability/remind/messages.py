"""Render reminder emails: Jinja2 templates, Babel plural forms and dates, MIME assembly.

Pure: everything a message needs comes in (customer, step, links, `now`); nothing is
read or sent here. A message is `multipart/alternative` (text, then HTML) in UTF-8,
with a deterministic Message-ID and RFC 8058 one-click unsubscribe headers.
"""

from __future__ import annotations

import email.charset
import email.policy
import functools
import re
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr
from typing import Any, cast
from urllib.parse import quote, urlsplit

from durability.remind.addresses import Mailbox, parse_mailbox
from durability.remind.planner import Planned, message_id
from durability.remind.records import DELIVERED_STATES
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
        "copy_acc": {"one": "copy", "other": "copies"},
        "reminder": {"one": "reminder", "other": "reminders"},
    },
    # Babel's categories for Polish: one (1), few (2-4, 22-24, ...; not 12-14),
    # many (0, 5-21, 25-31, ...), other (fractions).
    "pl": {
        "day": {"one": "dzień", "few": "dni", "many": "dni", "other": "dnia"},
        "copy": {"one": "kopia", "few": "kopie", "many": "kopii", "other": "kopii"},
        # The accusative, for "potwierdzono 1 kopię" (only the singular differs).
        "copy_acc": {"one": "kopię", "few": "kopie", "many": "kopii", "other": "kopii"},
        "reminder": {"one": "przypomnienie", "few": "przypomnienia", "many": "przypomnień",
                     "other": "przypomnienia"},
    },
}

SUBJECTS = {
    "en": ("{provider}: a reminder to keep your own backup copy",
           "{provider}: your own backup copy, reminder {step} of at most {steps}",
           "{provider}: your own backup copy, the last reminder"),
    "pl": ("{provider}: przypomnienie o własnej kopii zapasowej",
           "{provider}: przypomnienie nr {step} o własnej kopii zapasowej",
           "{provider}: ostatnie przypomnienie o własnej kopii zapasowej"),
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
    max_reminders: int = 6
    panel_url: str | None = None

    @functools.cached_property
    def mailbox(self) -> Mailbox:
        """Return the From address, parsed (`from_addr` may be "Name <addr>")."""
        return parse_mailbox(self.from_addr)

    @functools.cached_property
    def reply_header(self) -> str | None:
        """Return the Reply-To header value, or None when unset."""
        return parse_mailbox(self.reply_to).header() if self.reply_to else None

    @functools.cached_property
    def link_domain(self) -> str:
        """Return the host every link of the message points at."""
        return urlsplit(self.base_url).hostname or self.base_url


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


# A one-letter word, "nr" or a number, at the start of a word (also after "(").
_GLUE = re.compile(r"(?<![^\s(])([aiouwzAIOUWZ]|nr|\d+) ")


def wrap_paragraphs(text: str, width: int = 76) -> str:
    """Wrap each paragraph of a text part to `width`; lines that start with a space
    (lists, commands, links) and single short lines are kept as they are."""
    import textwrap

    out: list[str] = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if any(line.startswith(" ") for line in lines) or all(len(x) <= width for x in lines):
            out.append(block)
            continue
        # A number stays with its noun and a one-letter word with the next one ("75 dni",
        # "w sprawie"), as Polish typesetting wants.
        joined = _GLUE.sub("\\1\0", " ".join(lines))
        out.append(textwrap.fill(joined, width=width, break_long_words=False,
                                 break_on_hyphens=False).replace("\0", " "))
    return "\n\n".join(out)


_TAG = re.compile(r"(<[^>]*>)")


def glue_html(html: str) -> str:
    """Return an HTML part with a no-break space after each one-letter word and number
    of its text (never inside tags), so a Polish line does not end with "w" or "75"."""
    return "".join(part if part.startswith("<") else _GLUE.sub("\\1\u00a0", part)
                   for part in _TAG.split(html))


def links_for(sender: Sender, customer_id: str, now: datetime) -> dict[str, str]:
    """Return the signed confirm, snooze and unsubscribe URLs for a customer."""
    return {
        f"{action}_url": link_url(sender.base_url, action,
                                  sign_token(sender.secret, customer_id, action, now))
        for action in ("confirm", "snooze", "unsubscribe")
    }


def _previous_reminder(planned: Planned) -> datetime | None:
    """Return when the last reminder of this period before this one was handed over."""
    handed = [entry.handed_at for entry in planned.customer.outbox
              if entry.period_start == planned.period_start and entry.step < planned.step
              and entry.state in DELIVERED_STATES and entry.handed_at is not None]
    return max(handed) if handed else None


def _host(url: str | None) -> str | None:
    if not url:
        return None
    return urlsplit(url).hostname or url


def subject_for(planned: Planned, sender: Sender) -> str:
    """Return the subject of a reminder (the step and the most there will be, after the
    first)."""
    language = planned.customer.language if planned.customer.language in WORDS else "en"
    steps = max(sender.max_reminders, planned.step)
    form = 0 if planned.step == 1 else 2 if planned.step >= steps else 1
    return SUBJECTS[language][form].format(provider=sender.provider, step=planned.step,
                                           steps=steps)


def _calendar_days(since: datetime, now: datetime) -> int:
    """Return the days between two moments as a calendar counts them.

    The email shows the date of `since` (`format_day`), so "yesterday" must mean the
    day before today's date in the same zone, not a full 24 hours ago.
    """
    if since.tzinfo is not None and now.tzinfo is not None:
        now = now.astimezone(since.tzinfo)
    return max(0, (now.date() - since.date()).days)


def template_values(planned: Planned, sender: Sender, now: datetime) -> dict[str, Any]:
    """Return what the templates of a reminder are given (also used by the previews)."""
    customer = planned.customer
    language = customer.language if customer.language in WORDS else "en"
    previous = _previous_reminder(planned)
    days = _calendar_days(customer.last_copy_at, now) if customer.last_copy_at else 0
    return {
        "provider": sender.provider,
        "service": sender.service,
        "customer_id": customer.id,
        "step": planned.step,
        "steps": max(sender.max_reminders, planned.step),
        "last_copy": format_day(customer.last_copy_at, language)
        if customer.last_copy_at else None,
        "days": days,
        "copies": customer.confirmed_copies,
        "previous": format_day(previous, language) if previous else None,
        "helper_url": sender.helper_url,
        "helper_host": _host(sender.helper_url),
        "panel_url": sender.panel_url,
        "panel_host": _host(sender.panel_url),
        "link_domain": sender.link_domain,
        "subject": subject_for(planned, sender),
        "plural": lambda count, word: plural(language, count, word),
        **links_for(sender, customer.id, now),
    }


def render_reminder(planned: Planned, sender: Sender, now: datetime) -> Message:
    """Given a planned reminder, the sender and `now`, return the complete email."""
    customer = planned.customer
    language = customer.language if customer.language in WORDS else "en"
    values = template_values(planned, sender, now)
    links = {key: values[key] for key in ("confirm_url", "snooze_url", "unsubscribe_url")}
    subject = values["subject"]
    env = _environment()
    text = wrap_paragraphs(env.get_template(f"{language}.txt.j2").render(values))
    html = env.get_template(f"{language}.html.j2").render(values)
    if language == "pl":
        html = glue_html(html)

    # Built with the compat32 MIME classes and headers encoded here: the modern policy
    # re-parses every header it is given, which made rendering most of a send's cost.
    message = MIMEMultipart("alternative", policy=POLICY)
    message["Subject"] = _header_text(subject, "Subject")
    mailbox = sender.mailbox
    message["From"] = mailbox.header(sender.provider)
    message["To"] = formataddr((customer.name, customer.email), "utf-8")
    if sender.reply_header:
        message["Reply-To"] = sender.reply_header
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id(planned.key, mailbox.domain or "localhost")
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

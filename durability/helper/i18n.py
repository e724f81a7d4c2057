"""The helper's language: Polish or English, from the locale the customer's desktop sets.

Messages are translated with the standard library's `gettext` from the compiled catalogs
shipped in the package (`locale/LANG/LC_MESSAGES/durability-helper.mo`, built from the
`.po` files with Babel: see scripts/helper-catalogs.sh); nothing beyond the standard
library is needed at run time. The language comes from LC_ALL, else LC_MESSAGES, else
LANG, as POSIX orders them; "C", "POSIX" or an unknown language means English.

Polish addresses the customer with "Ty" and is gender-neutral, like the emails.
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

DOMAIN = "durability-helper"
LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("en", "pl")

_current: gettext.NullTranslations | None = None
_language = "en"


def language_from(environ: Mapping[str, str] | None = None) -> str:
    """Return "pl" or "en" for an environment's LC_ALL, LC_MESSAGES and LANG."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            code = value.split(".")[0].split("@")[0].split("_")[0].lower()
            return code if code in LANGUAGES else "en"
    return "en"


def use(language: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Switch the messages to `language` (default: the environment's); return it."""
    global _current, _language
    chosen = language if language in LANGUAGES else language_from(environ)
    _current = gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=[chosen],
                                   fallback=True)
    _language = chosen
    return chosen


def _translations() -> gettext.NullTranslations:
    if _current is None:
        use()
    assert _current is not None
    return _current


def current() -> str:
    """Return the language in use ("pl" or "en")."""
    _translations()
    return _language


def _(message: str) -> str:
    """Return a message in the customer's language."""
    return _translations().gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """Return the form of a message for `count` (Polish has three: 1, 2-4, 5+)."""
    return _translations().ngettext(singular, plural, count)


def pgettext(context: str, message: str) -> str:
    """Return a message whose translation depends on `context` (month names)."""
    return _translations().pgettext(context, message)


def N_(message: str) -> str:
    """Mark a message for the catalog without translating it here."""
    return message


# argparse's own words in --help and usage errors, so that they read in one language.
ARGPARSE_WORDS = (
    N_("usage: "), N_("options"), N_("positional arguments"),
    N_("show this help message and exit"), N_("show program's version number and exit"),
    N_("%(prog)s: error: %(message)s\n"), N_("argument %(argument_name)s: %(message)s"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("the following arguments are required: %s"), N_("unrecognized arguments: %s"),
    N_("expected one argument"), N_("invalid %(type)s value: %(value)r"),
    N_("expected at most one argument"), N_("expected at least one argument"),
    N_("ignored explicit argument %r"), N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("unexpected option string: %s"), N_("not allowed with argument %s"),
    N_("one of the arguments %s is required"),
)


def localize_argparse() -> None:
    """Let argparse's own words come from the helper's catalog."""
    import argparse

    setattr(argparse, "_", _)  # noqa: B010 - argparse looks its words up through `_`
    setattr(argparse, "ngettext", ngettext)  # noqa: B010


def _month(number: int) -> str:
    # Spelled out so that the catalog tools find every name; Polish needs the genitive.
    return (
        pgettext("date", "January"), pgettext("date", "February"),
        pgettext("date", "March"), pgettext("date", "April"), pgettext("date", "May"),
        pgettext("date", "June"), pgettext("date", "July"), pgettext("date", "August"),
        pgettext("date", "September"), pgettext("date", "October"),
        pgettext("date", "November"), pgettext("date", "December"),
    )[number - 1]


def format_time(value: str | datetime | None, never: str = "") -> str:
    """Given an ISO-8601 time (or datetime), return it in local time as people write it:
    "1 grudnia 2026, 14:05" or "1 December 2026, 14:05". Unreadable text is shown as is."""
    if value is None or value == "":
        return never
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    local = moment.astimezone() if moment.tzinfo is not None else moment
    month = _month(local.month)
    return _("{day} {month} {year}, {time}").format(
        day=local.day, month=month, year=local.year, time=local.strftime("%H:%M"))


def format_duration(seconds: float) -> str:
    """Return a time left, roughly: "under a minute", "about 4 min", "about 2 h 10 min"."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return _("under a minute")
    if minutes < 60:
        return _("about {minutes} min").format(minutes=minutes)
    return _("about {hours} h {minutes} min").format(hours=minutes // 60, minutes=minutes % 60)


def format_bytes(count: int) -> str:
    """Return a size as the language writes it (decimal comma in Polish)."""
    from durability.units import format_bytes as english

    text = english(count)
    return text.replace(".", ",") if current() == "pl" else text

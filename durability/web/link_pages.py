"""The pages a customer sees behind the links of a reminder email, in Polish or English.

Only rendering: `durability.web.links` decides what happened and passes a `LinkView`
(who is writing, which account, how to reach the provider) and the outcome. Polish is
addressed with "Ty" and gender-neutral, like the emails. Every page names the provider
and, once the link is known to be good, the account; every refusal says what to do next.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from werkzeug.wrappers import Request, Response

    from durability.config import Config
    from durability.web.signing import TokenError

LANGUAGES = ("pl", "en")
# The provider writes Polish first: a browser that states no known language gets Polish.
DEFAULT_LANGUAGE = "pl"

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "account": "{provider}, account {account}",
        "confirm.title": "Confirm your own backup copy",
        "confirm.ask": "Press the button to confirm that your backups are copied to a disk "
                       "of your own. Reminders then stop until the next copy is due.",
        "confirm.button": "I have a copy",
        "confirm.done.title": "Copy confirmed",
        "confirm.done": "Thank you. Your copy is recorded; we will remind you again when "
                        "the next one is due.",
        "snooze.title": "Remind me later",
        "snooze.ask": "Choose when we should remind you again:",
        "snooze.done.title": "Reminder postponed",
        "snooze.done": "We will not remind you before {until}.",
        "unsubscribe.title": "Turn off backup reminders",
        "unsubscribe.ask": "Press the button to stop all backup reminder emails for this "
                           "account.",
        "unsubscribe.button": "Turn reminders off",
        "unsubscribe.done.title": "Reminders turned off",
        "unsubscribe.done": "You will receive no more backup reminders for this account.",
        "replay.title": "This link has been used already",
        "replay": "Nothing changed: what you chose the first time still holds.",
        "damaged.title": "This link is incomplete or damaged",
        "damaged": "Part of the address is probably missing or was changed, for example "
                   "when it was copied or when the email program split a long line.",
        "damaged.next": "Open the link again by clicking it in the email itself, without "
                        "copying it. If that does not help, use the link from our most "
                        "recent email.",
        "expired.title": "This link has expired",
        "expired": "Links in our reminder emails work for a limited time, and this one no "
                   "longer does.",
        "expired.next": "Use the link from our most recent email. If you do not have one, "
                        "the next reminder brings fresh links.",
        "action.title": "This link is meant for a different page",
        "action.confirm": "This link is for confirming your backup copy.",
        "action.snooze": "This link is for postponing the reminder.",
        "action.unsubscribe": "This link is for turning the reminders off.",
        "action.button": "Go to the right page",
        "unchanged": "Nothing was changed in your account.",
        "panel.next": "You can also go to the customer panel by typing its address into "
                      "your browser yourself.",
        "unknown.title": "Account not found",
        "unknown": "We could not find the account this link is for. It may have been "
                   "closed.",
        "unknown.next": "If you think this is a mistake, contact us.",
        "bad.title": "No date was chosen",
        "bad": "The reminder was not postponed, because no date was chosen. Choose when "
               "we should remind you again:",
        "contact": "Questions? Write to us: {contact}.",
        "panel": "Customer panel: {panel}",
    },
    "pl": {
        "account": "{provider}, konto {account}",
        "confirm.title": "Potwierdź własną kopię zapasową",
        "confirm.ask": "Kliknij przycisk, aby potwierdzić, że masz już kopię swoich danych "
                       "na własnym dysku. Kolejne przypomnienie dostaniesz dopiero wtedy, "
                       "gdy przyjdzie pora na następną kopię.",
        "confirm.button": "Mam już kopię",
        "confirm.done.title": "Kopia potwierdzona",
        "confirm.done": "Dziękujemy. Zapisaliśmy potwierdzenie kopii. O następnej "
                        "przypomnimy Ci, gdy przyjdzie na nią pora.",
        "snooze.title": "Przypomnij mi później",
        "snooze.ask": "Wybierz, kiedy mamy Ci znowu przypomnieć o kopii:",
        "snooze.done.title": "Przypomnienie odłożone",
        "snooze.done": "Następne przypomnienie wyślemy nie wcześniej niż {until}.",
        "unsubscribe.title": "Wyłącz przypomnienia o kopiach",
        "unsubscribe.ask": "Kliknij przycisk, aby wyłączyć wszystkie przypomnienia o kopiach "
                           "zapasowych dla tego konta.",
        "unsubscribe.button": "Wyłącz przypomnienia",
        "unsubscribe.done.title": "Przypomnienia wyłączone",
        "unsubscribe.done": "Nie będziemy już wysyłać przypomnień o kopiach zapasowych dla "
                            "tego konta.",
        "replay.title": "Ten link został już użyty",
        "replay": "Nic się nie zmieniło. Nadal obowiązuje to, co wybrano za pierwszym razem.",
        "damaged.title": "Ten link jest niepełny lub uszkodzony",
        "damaged": "Prawdopodobnie brakuje części adresu albo coś się w nim zmieniło, na "
                   "przykład przy kopiowaniu lub gdy program pocztowy podzielił długi wiersz.",
        "damaged.next": "Otwórz link jeszcze raz, klikając go bezpośrednio w wiadomości, bez "
                        "kopiowania. Jeśli to nie pomoże, użyj linku z naszej najnowszej "
                        "wiadomości.",
        "expired.title": "Ten link już wygasł",
        "expired": "Linki w przypomnieniach działają tylko przez pewien czas, a ten jest już "
                   "nieważny.",
        "expired.next": "Użyj linku z naszej najnowszej wiadomości. Jeśli jej nie masz, nowe "
                        "linki przyjdą w następnym przypomnieniu.",
        "action.title": "Ten link nie pasuje do tej strony",
        "action.confirm": "Ten link służy do potwierdzenia kopii zapasowej.",
        "action.snooze": "Ten link służy do odłożenia przypomnienia.",
        "action.unsubscribe": "Ten link służy do wyłączenia przypomnień.",
        "action.button": "Przejdź do właściwej strony",
        "unchanged": "Na Twoim koncie nic się nie zmieniło.",
        "panel.next": "Możesz też wejść do panelu klienta, wpisując jego adres w przeglądarce.",
        "unknown.title": "Nie znaleźliśmy konta",
        "unknown": "Nie znaleźliśmy konta, którego dotyczy ten link. Mogło zostać zamknięte.",
        "unknown.next": "Jeśli uważasz, że to pomyłka, skontaktuj się z nami.",
        "bad.title": "Nie wybrano terminu",
        "bad": "Przypomnienie nie zostało odłożone, bo nie wybrano terminu. Wybierz, kiedy "
               "mamy Ci znowu przypomnieć o kopii:",
        "contact": "Masz pytania? Napisz do nas: {contact}.",
        "panel": "Panel klienta: {panel}",
    },
}

# What a refused link's page says, by the reason of durability.web.signing.TokenError.
REASONS = ("damaged", "expired", "action")
ACTIONS = ("confirm", "snooze", "unsubscribe")


@dataclass(frozen=True)
class LinkView:
    """What every link page shows besides its message: the provider and how to reach it."""

    provider: str
    contact: str
    panel_url: str | None = None
    account: str | None = None


def view_for(config: Config, account: str | None = None) -> LinkView:
    """Return the provider's details from the config (the account once it is known)."""
    from durability.remind.addresses import parse_mailbox

    remind, smtp = config.remind, config.smtp
    contact = remind.contact or ""
    if not contact:
        try:
            contact = parse_mailbox(smtp.reply_to or smtp.from_).address
        except ValueError:
            contact = ""
    return LinkView(remind.provider_name, contact, remind.panel_url, account)


def language_of(request: Request) -> str:
    """Return the page language a browser asks for (Polish when it names neither)."""
    # In the browser's order of preference; "pl-PL" is Polish.
    for tag, _quality in request.accept_languages:
        primary = tag.replace("_", "-").split("-")[0].lower()
        if primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE


def text(lang: str, key: str, **values: str) -> str:
    """Return one sentence of the page texts (English for an unknown language)."""
    table = TEXTS.get(lang, TEXTS["en"])
    return table[key].format(**values)


def refusal(lang: str, reason: str, token_action: str = "") -> tuple[str, list[str]]:
    """Given a refusal reason ("damaged", "expired", "action") and, for "action", the
    action the link is really for, return the page's title and paragraphs: what happened,
    that nothing changed, and what to do next."""
    if reason == "action" and token_action in ACTIONS:
        return text(lang, "action.title"), [text(lang, f"action.{token_action}"),
                                             text(lang, "unchanged")]
    reason = reason if reason in ("damaged", "expired") else "damaged"
    return text(lang, f"{reason}.title"), [
        text(lang, reason), text(lang, "unchanged"), text(lang, f"{reason}.next")]


def day_text(moment: datetime, lang: str) -> str:
    """Return a date as the language writes it (1 grudnia 2026, December 1, 2026)."""
    from babel.dates import format_date

    return str(format_date(moment.date(), format="long", locale=lang))


def snooze_label(lang: str, days: int) -> str:
    """Return a snooze button's label, with the plural form of the language."""
    from durability.remind.messages import plural

    return f"Za {plural('pl', days, 'day')}" if lang == "pl" else f"In {plural('en', days, 'day')}"


STYLE = (
    "<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;"
    "padding:0 1rem;line-height:1.5;color:#1f2937;background:#fff}"
    "h1{font-size:1.5rem;line-height:1.25}.who{color:#374151;margin:0 0 .25rem}"
    "button{font-size:1rem;padding:.6rem 1.2rem;margin:.3rem .3rem 0 0;cursor:pointer;"
    "border:1px solid #1d4ed8;border-radius:6px;background:#1d4ed8;color:#fff}"
    "a.button{display:inline-block;padding:.6rem 1.2rem;border-radius:6px;background:#1d4ed8;"
    "color:#fff;text-decoration:none}"
    ".foot{margin-top:2rem;font-size:.95rem;color:#374151;overflow-wrap:anywhere}</style>"
)


def page_html(lang: str, title: str, paragraphs: list[str], view: LinkView,
              form: str = "") -> str:
    """Return a whole page: who writes (and for which account), the title, the text, an
    optional form (already HTML) and how to reach the provider."""
    who = (text(lang, "account", provider=view.provider, account=view.account)
           if view.account else view.provider)
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    if lang == "pl":
        # One-letter words and numbers stay with the next word, as Polish text wants.
        from durability.remind.messages import glue_html

        body = glue_html(body)
    foot = []
    if view.contact:
        foot.append(f"<p>{escape(text(lang, 'contact', contact=view.contact))}</p>")
    if view.panel_url:
        foot.append(f"<p>{escape(text(lang, 'panel', panel=view.panel_url))}</p>")
    return (
        f'<!doctype html>\n<html lang="{escape(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{escape(title)} \u2013 '
        f"{escape(view.provider)}</title>{STYLE}</head><body><main>"
        f'<p class="who">{escape(who)}</p><h1>{escape(title)}</h1>{body}{form}'
        f'<div class="foot">{"".join(foot)}</div></main></body></html>\n'
    )


def form_html(action: str, lang: str, path: str, view: LinkView) -> str:
    """Return the GET page of a link: what pressing the button does, and the button."""
    if action == "snooze":
        form = _snooze_form(lang, path)
    else:
        form = (f'<form method="post" action="{escape(path)}"><button type="submit" name="go" '
                f"value=\"1\">{escape(text(lang, f'{action}.button'))}</button></form>")
    return page_html(lang, text(lang, f"{action}.title"), [text(lang, f"{action}.ask")], view,
                     form)


def _snooze_form(lang: str, path: str) -> str:
    from durability.web.links import SNOOZE_DAYS

    buttons = "".join(
        f'<button type="submit" name="days" value="{d}">{escape(snooze_label(lang, d))}'
        "</button>" for d in SNOOZE_DAYS)
    return f'<form method="post" action="{escape(path)}">{buttons}</form>'


def _response(status: int, body: str) -> Response:
    from werkzeug.wrappers import Response

    from durability.web.app import STRICT_CSP

    response = Response(body, status=status, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = STRICT_CSP
    return response


def done_page(action: str, lang: str, fresh: bool, view: LinkView,
              until: datetime | None = None) -> Response:
    """Return the page after a POST: the heading says it is done (or already was)."""
    if not fresh:
        return _response(200, page_html(lang, text(lang, "replay.title"),
                                        [text(lang, "replay")], view))
    values = {"until": day_text(until, lang)} if until is not None else {}
    return _response(200, page_html(lang, text(lang, f"{action}.done.title"),
                                    [text(lang, f"{action}.done", **values)], view))


def bad_request_page(lang: str, path: str, view: LinkView) -> Response:
    """Return the 400 page of a snooze post that lacks a valid choice: what happened, and
    the snooze buttons again."""
    return _response(400, page_html(lang, text(lang, "bad.title"), [text(lang, "bad")], view,
                                    _snooze_form(lang, path)))


def invalid_page(request: Request, error: TokenError, action: str, token: str,
                 view: LinkView) -> Response:
    """Return the 403 page of a refused link, in the browser's language: what happened,
    that nothing changed, and the next step (for a link of another kind, a way to its page)."""
    from durability.web.signing import link_url

    lang = language_of(request)
    title, paragraphs = refusal(lang, error.reason, error.token_action)
    form = ""
    if error.reason == "action" and error.token_action in ACTIONS and error.token_action != action:
        target = link_url("", error.token_action, token)
        form = (f'<p><a class="button" href="{escape(target)}">'
                f"{escape(text(lang, 'action.button'))}</a></p>")
    if view.panel_url:
        paragraphs.append(text(lang, "panel.next"))
    return _response(403, page_html(lang, title, paragraphs, view, form))


def unknown_page(request: Request, view: LinkView, lang: str | None = None) -> Response:
    """Return the 404 page of a good link whose account is no longer on record."""
    lang = lang or language_of(request)
    return _response(404, page_html(
        lang, text(lang, "unknown.title"), [text(lang, "unknown"), text(lang, "unknown.next")],
        view))

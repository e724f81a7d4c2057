"""Customer links: `/l/<action>/<token>` for confirm, snooze and unsubscribe.

GET and HEAD only show a page with a button (mail scanners and link previews open
links); only POST records the action. A POST to an unsubscribe link with
`List-Unsubscribe=One-Click` is the RFC 8058 one-click unsubscribe. A POST of JSON to a
confirm link is a receipt from durability-helper. Replays change nothing: each link
(and each receipt's snapshot id) is recorded at most once, and one confirm link carries
at most `MAX_RECEIPTS_PER_LINK` distinct receipts. Bodies are capped by the app (413).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from html import escape
from typing import TYPE_CHECKING, Any

from durability.model import isoformat_z
from durability.web.app import PAGE_STYLE, STRICT_CSP, plain_page

if TYPE_CHECKING:
    from werkzeug.routing import Rule
    from werkzeug.wrappers import Request, Response

    from durability.state.store import Store
    from durability.web.app import Web

SNOOZE_DAYS = (7, 14, 30)

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "confirm.title": "Confirm your own backup copy",
        "confirm.ask": "Press the button to confirm that you have copied your backups to "
                       "your own external media. We will stop reminding you until the next "
                       "copy is due.",
        "confirm.button": "I have made a copy",
        "confirm.done": "Thank you. Your copy is recorded; the next reminder comes when the "
                        "next copy is due.",
        "snooze.title": "Remind me later",
        "snooze.ask": "Choose when we should remind you again:",
        "snooze.button": "In {days} days",
        "snooze.done": "Done. We will not remind you before {until}.",
        "unsubscribe.title": "Stop backup reminders",
        "unsubscribe.ask": "Press the button to stop all backup reminder emails for this "
                           "account.",
        "unsubscribe.button": "Stop reminders",
        "unsubscribe.done": "You will receive no more backup reminders for this account.",
        "replay": "This link was already used; nothing changed.",
        "invalid.title": "This link cannot be used",
        "unknown": "This account is no longer known to us.",
        "bad": "The request was not understood.",
    },
    "pl": {
        "confirm.title": "Potwierdź własną kopię zapasową",
        "confirm.ask": "Naciśnij przycisk, aby potwierdzić, że skopiowałeś kopie zapasowe na "
                       "własny nośnik zewnętrzny. Nie będziemy przypominać do czasu kolejnej "
                       "kopii.",
        "confirm.button": "Zrobiłem kopię",
        "confirm.done": "Dziękujemy. Kopia została odnotowana; kolejne przypomnienie przyjdzie, "
                        "gdy nadejdzie czas następnej kopii.",
        "snooze.title": "Przypomnij mi później",
        "snooze.ask": "Wybierz, kiedy mamy przypomnieć ponownie:",
        "snooze.button": "Za {days} dni",
        "snooze.done": "Gotowe. Nie przypomnimy przed {until}.",
        "unsubscribe.title": "Wyłącz przypomnienia o kopiach",
        "unsubscribe.ask": "Naciśnij przycisk, aby wyłączyć wszystkie przypomnienia o kopiach "
                           "zapasowych dla tego konta.",
        "unsubscribe.button": "Wyłącz przypomnienia",
        "unsubscribe.done": "Nie otrzymasz już przypomnień o kopiach zapasowych dla tego konta.",
        "replay": "Ten link został już użyty; nic się nie zmieniło.",
        "invalid.title": "Tego linku nie można użyć",
        "unknown": "To konto nie jest nam już znane.",
        "bad": "Nie rozumiemy tego żądania.",
    },
}

# Polish for the reasons a link is refused (see durability.web.signing).
INVALID_PL = {
    "this link is damaged (it may have been cut or changed)":
        "Ten link jest uszkodzony (mógł zostać ucięty lub zmieniony).",
    "this link is not valid (it may have been cut or changed)":
        "Ten link jest nieprawidłowy (mógł zostać ucięty lub zmieniony).",
    "this link is damaged": "Ten link jest uszkodzony.",
    "this link is for a different action": "Ten link dotyczy innej czynności.",
    "this link has expired; the next reminder brings a fresh one":
        "Ten link wygasł; następne przypomnienie przyniesie nowy.",
}

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SNAPSHOT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Distinct receipts (snapshot ids) one confirm link may carry in its 60 days.
MAX_RECEIPTS_PER_LINK = 20
# The largest body a link accepts (a form post or a helper receipt).
MAX_BODY_BYTES = 16 * 1024

MIGRATIONS = (
    """
    CREATE TABLE link_receipts (
        link_key TEXT NOT NULL,
        snapshot_id TEXT NOT NULL,
        received_at TEXT NOT NULL,
        PRIMARY KEY (link_key, snapshot_id)
    );
    """,
)


def routes() -> list[Rule]:
    """Return the customer-link routes."""
    from werkzeug.routing import Rule

    return [
        Rule("/l/<any(confirm, snooze, unsubscribe):action>/<token>",
             endpoint=handle_link, methods=["GET", "POST"]),
    ]


def _text(lang: str, key: str, **values: Any) -> str:
    table = TEXTS.get(lang, TEXTS["en"])
    return table[key].format(**values)


def _json(status: int, body: dict[str, Any]) -> Response:
    from werkzeug.wrappers import Response

    return Response(json.dumps(body) + "\n", status=status, content_type="application/json")


def handle_link(request: Request, web: Web, action: str, token: str) -> Response:
    """Show (GET) or carry out (POST) one customer link."""
    from durability.web.signing import TokenError, read_secret, verify_token

    wants_json = request.mimetype == "application/json"
    now = web.now()
    try:
        link = verify_token(read_secret(web.config.web.secret_file), token, action, now)
    except TokenError as error:
        if wants_json:
            return _json(403, {"error": str(error)})
        # The customer's language is unknown until the token is good: say it in both.
        return plain_page(
            403, f"{_text('en', 'invalid.title')} / {_text('pl', 'invalid.title')}",
            f"{str(error).capitalize()}. {INVALID_PL.get(str(error), '')}".strip())
    from durability.remind import state

    customer = state.load_state(web.store(), link.customer_id)
    if customer is None:
        if wants_json:
            return _json(404, {"error": "unknown customer"})
        return plain_page(404, _text("en", "invalid.title"), _text("en", "unknown"))
    lang = customer.language
    if request.method != "POST":  # GET and HEAD only show the page
        return _form_page(action, lang, request.path)
    if action == "confirm" and wants_json:
        return _receipt(request, web, link.customer_id, link.key, now)
    dedup = f"link:{action}:{link.key}"
    try:
        if action == "confirm":
            fresh = state.record_confirmation(web.store(), link.customer_id, now, "link",
                                              dedup, now)
            return _done_page(lang, action, fresh, _text(lang, "confirm.done"))
        if action == "snooze":
            days_text = request.form.get("days", "")
            if not days_text.isdigit() or int(days_text) not in SNOOZE_DAYS:
                return plain_page(400, _text(lang, "snooze.title"), _text(lang, "bad"), lang)
            until = now + timedelta(days=int(days_text))
            fresh = state.record_snooze(web.store(), link.customer_id, until, dedup, now)
            return _done_page(lang, action, fresh,
                              _text(lang, "snooze.done", until=_date(until, lang)))
        source = "one-click" if request.form.get("List-Unsubscribe") == "One-Click" else "link"
        fresh = state.record_unsubscribe(web.store(), link.customer_id, source, now)
        return _done_page(lang, action, fresh, _text(lang, "unsubscribe.done"))
    except KeyError:
        return plain_page(404, _text(lang, "invalid.title"), _text(lang, "unknown"), lang)


def _date(moment: datetime, lang: str) -> str:
    from babel.dates import format_date

    return str(format_date(moment.date(), format="long", locale=lang))


def _form_page(action: str, lang: str, path: str) -> Response:
    from werkzeug.wrappers import Response

    title = _text(lang, f"{action}.title")
    if action == "snooze":
        buttons = "".join(
            f'<button type="submit" name="days" value="{d}">'
            f"{escape(_text(lang, 'snooze.button', days=d))}</button>" for d in SNOOZE_DAYS)
    else:
        buttons = (f'<button type="submit" name="go" value="1">'
                   f"{escape(_text(lang, f'{action}.button'))}</button>")
    body = (
        f'<!doctype html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{escape(title)}</title>{PAGE_STYLE}'
        f"</head><body><main><h1>{escape(title)}</h1>"
        f"<p>{escape(_text(lang, f'{action}.ask'))}</p>"
        f'<form method="post" action="{escape(path)}">{buttons}</form>'
        "</main></body></html>\n"
    )
    response = Response(body, status=200, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = STRICT_CSP
    return response


def _done_page(lang: str, action: str, fresh: bool, message: str) -> Response:
    title = _text(lang, f"{action}.title")
    return plain_page(200, title, message if fresh else _text(lang, "replay"), lang)


def _receipt(
    request: Request, web: Web, customer_id: str, link_key: str, now: datetime,
) -> Response:
    """Record a helper receipt (JSON) as a confirmation of source "helper"."""
    from durability.remind import state
    from durability.web.app import load_json

    try:
        body = load_json(request.get_data())
        if not isinstance(body, dict) or not isinstance(body.get("receipt"), dict):
            raise ValueError("expected an object with a 'receipt' object")
        receipt = body["receipt"]
        copy_at = _parse_receipt_time(receipt["time"])
        snapshot_id = receipt["snapshot_id"]
        files, size, verified, disk = (receipt["files"], receipt["bytes"],
                                       receipt["verified"], receipt["disk"])
        if not isinstance(snapshot_id, str) or not _SNAPSHOT_ID.match(snapshot_id):
            raise ValueError("snapshot_id must be 1 to 128 letters, digits or ._:-")
        for name, number in (("files", files), ("bytes", size)):
            if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                raise ValueError(f"{name} must be a non-negative integer")
        if not isinstance(verified, bool):
            raise ValueError("verified must be true or false")
        if not isinstance(disk, str) or not _HEX64.match(disk):
            raise ValueError("disk must be a sha256 hex digest")
    except (ValueError, KeyError, TypeError) as error:
        reason = f"missing field {error}" if isinstance(error, KeyError) else str(error)
        return _json(400, {"error": f"malformed receipt: {reason}"})
    if not verified:
        return _json(422, {"error": "the copy was not verified; nothing recorded"})
    copy_at = min(copy_at, now)
    if not _count_receipt(web.store(), link_key, snapshot_id, now):
        return _json(429, {"error": f"this link has carried {MAX_RECEIPTS_PER_LINK} receipts; "
                                    "the next reminder brings a fresh link"})
    try:
        state.record_confirmation(
            web.store(), customer_id, copy_at, "helper", f"receipt:{customer_id}:{snapshot_id}",
            now, {"snapshot_id": snapshot_id, "files": files, "bytes": size, "disk": disk},
        )
    except KeyError:
        return _json(404, {"error": "unknown customer"})
    return _json(200, {"status": "confirmed", "customer": customer_id,
                       "at": isoformat_z(copy_at)})


def _count_receipt(store: Store, link_key: str, snapshot_id: str, now: datetime) -> bool:
    """Note one receipt on a link; return False if the link has carried its maximum.

    A snapshot id already noted is a replay and always passes (it changes nothing).
    """
    store.migrate("links", MIGRATIONS)
    with store.transaction():
        # Links expire after 60 days; what they carried before is no longer needed.
        store.execute("DELETE FROM link_receipts WHERE received_at < ?",
                      (isoformat_z(now - timedelta(days=61)),))
        if store.query_one("SELECT 1 FROM link_receipts WHERE link_key = ? AND snapshot_id = ?",
                           (link_key, snapshot_id)):
            return True
        row = store.query_one("SELECT COUNT(*) FROM link_receipts WHERE link_key = ?",
                              (link_key,))
        if row and int(row[0]) >= MAX_RECEIPTS_PER_LINK:
            return False
        store.execute(
            "INSERT INTO link_receipts (link_key, snapshot_id, received_at) VALUES (?, ?, ?)",
            (link_key, snapshot_id, isoformat_z(now)))
    return True


def _parse_receipt_time(value: Any) -> datetime:
    from durability.remind.records import parse_time

    if not isinstance(value, str):
        raise ValueError("time must be an ISO-8601 string")
    try:
        moment = parse_time(value)
    except ValueError as error:
        raise ValueError(f"time is not ISO-8601: {value!r}") from error
    except OverflowError as error:  # year 1 or 9999 moved past the calendar's end
        raise ValueError(f"time is out of range: {value!r}") from error
    if moment is None:
        raise ValueError("time is empty")
    return moment

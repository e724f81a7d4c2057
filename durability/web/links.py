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
from typing import TYPE_CHECKING, Any

from durability.model import isoformat_z
from durability.web import link_pages
from durability.web.app import STRICT_CSP

if TYPE_CHECKING:
    from werkzeug.routing import Rule
    from werkzeug.wrappers import Request, Response

    from durability.state.store import Store
    from durability.web.app import Web

SNOOZE_DAYS = (7, 14, 30)

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
            return _json(403, {"error": str(error), "reason": error.reason})
        # The customer's language is unknown until the token is good: the browser's.
        return link_pages.invalid_page(request, error, action, token,
                                       link_pages.view_for(web.config))
    from durability.remind import state

    customer = state.load_state(web.store(), link.customer_id)
    if customer is None:
        if wants_json:
            return _json(404, {"error": "unknown customer"})
        return link_pages.unknown_page(request, link_pages.view_for(web.config))
    lang = customer.language
    view = link_pages.view_for(web.config, customer.id)
    if request.method != "POST":  # GET and HEAD only show the page
        return _form_page(action, lang, request.path, view)
    if action == "confirm" and wants_json:
        return _receipt(request, web, link.customer_id, link.key, now)
    dedup = f"link:{action}:{link.key}"
    try:
        if action == "confirm":
            fresh = state.record_confirmation(web.store(), link.customer_id, now, "link",
                                              dedup, now)
            return link_pages.done_page(action, lang, fresh, view)
        if action == "snooze":
            days_text = request.form.get("days", "")
            if not days_text.isdigit() or int(days_text) not in SNOOZE_DAYS:
                return link_pages.bad_request_page(lang, request.path, view)
            until = now + timedelta(days=int(days_text))
            fresh = state.record_snooze(web.store(), link.customer_id, until, dedup, now)
            return link_pages.done_page(action, lang, fresh, view, until)
        source = "one-click" if request.form.get("List-Unsubscribe") == "One-Click" else "link"
        fresh = state.record_unsubscribe(web.store(), link.customer_id, source, now)
        return link_pages.done_page(action, lang, fresh, view)
    except KeyError:
        return link_pages.unknown_page(request, view, lang)


def _form_page(action: str, lang: str, path: str, view: link_pages.LinkView) -> Response:
    from werkzeug.wrappers import Response

    body = link_pages.form_html(
        action, lang, path, view,
    )
    response = Response(body, status=200, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = STRICT_CSP
    return response


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

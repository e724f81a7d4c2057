"""The status page login: accounts and sessions in the state store (see accounts).

Accounts come from `durability users add` (and, as before, `status.users_file`). A login
sets one cookie, a random session id kept on the server: logout deletes the session,
removing a user or changing a password ends all of theirs. The cookie is HttpOnly,
SameSite=Strict and, when `web.base_url` is HTTPS, Secure. Unauthenticated requests are
sent to the login form.

Login attempts are counted per client address and per user name in the store; above
`accounts.THROTTLE_FAILURES` within the window the answer is 429 at once (no password
is checked and no worker waits). At most `PASSWORD_CHECKS` password checks (scrypt,
tens of milliseconds of CPU each) run at a time; a login arriving while they are busy
is answered 429 with Retry-After: 1 instead of queueing, so the server's workers stay
free for the customer links. An address or user found throttled is remembered in the
process until its wait ends, so a flood is answered without touching the store. Each
failure is logged with the user name and the address, never the password. Login and
logout POSTs coming from another site (by their Origin or Referer) are refused.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from durability.errors import ConfigError
from durability.web import accounts
from durability.web.accounts import hash_password, verify_password
from durability.web.app import PAGE_STYLE, STRICT_CSP, same_origin

if TYPE_CHECKING:
    from werkzeug.routing import Rule
    from werkzeug.wrappers import Request, Response

    from durability.web.accounts import UserRecord
    from durability.web.app import Web

__all__ = ["COOKIE", "current_user", "hash_password", "login_redirect", "verify_password"]

log = logging.getLogger(__name__)

COOKIE = "durability_session"
COOKIE_PATH = "/"
# Password checks running at once, over all of this process's workers.
PASSWORD_CHECKS = 1
_checking = threading.BoundedSemaphore(PASSWORD_CHECKS)
# Throttled addresses and users remembered per app (beyond this many, the oldest go).
MAX_HELD = 10_000


class _Holds:
    """Addresses and user names that must wait, until when (per app, thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[tuple[str, str], datetime] = {}

    def wait(self, keys: tuple[tuple[str, str], ...], now: datetime) -> int:
        with self._lock:
            ends = [self._until[key] for key in keys if key in self._until]
        left = max(((end - now).total_seconds() for end in ends), default=0.0)
        return int(left) + 1 if left > 0 else 0

    def hold(self, keys: tuple[tuple[str, str], ...], until: datetime) -> None:
        with self._lock:
            if len(self._until) >= MAX_HELD:
                for key in sorted(self._until, key=self._until.__getitem__)[:MAX_HELD // 2]:
                    del self._until[key]
            for key in keys:
                self._until[key] = until


def parse_users(text: str, source: str = "users file") -> dict[str, str]:
    """Given 'USER:HASH' lines ('#' comments allowed), return {user: hash}.

    Raise ConfigError naming the line of the first malformed entry.
    """
    users: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, encoded = line.partition(":")
        if not sep or not user or not encoded.startswith(("pbkdf2_sha256$", "pbkdf2:",
                                                          "scrypt:")):
            raise ConfigError(
                [f"At 'status.users_file': line {number}: expected USER:HASH"], source)
        users[user] = encoded
    return users


def read_users(path: str | None) -> dict[str, str]:
    """Given `status.users_file`, return its users ({} when unset). Raise ConfigError."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_users(handle.read(), path)
    except OSError as error:
        raise ConfigError([f"At 'status.users_file': cannot read {path}: {error.strerror}"]) \
            from error


def _still_valid(user: UserRecord, web: Web) -> bool:
    # An account copied from the users file follows the file: gone or changed there
    # ends it.
    if user.source != "file":
        return True
    try:
        return read_users(web.config.status.users_file).get(user.name) == user.file_hash
    except ConfigError:
        return False


def current_user(request: Request, web: Web) -> str | None:
    """Return the logged-in user of a request, or None."""
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    user = accounts.session_user(web.store(), value, web.now())
    if user is None or not _still_valid(user, web):
        return None
    return user.name


def login_redirect(request: Request) -> Response:
    """Return the answer to an unauthenticated request: to the login form."""
    from werkzeug.utils import redirect

    target = request.full_path.rstrip("?") if request.method == "GET" else "/status"
    response: Response = redirect(f"/status/login?next={quote(target, safe='/')}", code=303)
    return response


def _safe_next(value: str | None) -> str:
    # Only local paths under /status: never an open redirect, never a control
    # character (a header cannot carry one; browsers drop tabs and line breaks).
    if not value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/status"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/status") or "\\" in value:
        return "/status"
    return value


def login_page(message: str = "", next_url: str = "/status", status: int = 200) -> Response:
    """Return the login form, with an optional message."""
    from werkzeug.wrappers import Response

    note = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    body = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Sign in - durability status</title>{PAGE_STYLE}"
        "<style>label{display:block;margin:.8rem 0 .2rem}input{font-size:1rem;padding:.4rem;"
        "width:100%;box-sizing:border-box}.error{color:#a40000}</style></head><body><main>"
        f"<h1>durability status</h1>{note}"
        '<form method="post" action="/status/login">'
        f'<input type="hidden" name="next" value="{escape(next_url)}">'
        '<label for="user">User</label>'
        '<input id="user" name="user" autocomplete="username" required>'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>'
        '<p><button type="submit">Sign in</button></p></form></main></body></html>\n'
    )
    response = Response(body, status=status, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = STRICT_CSP
    return response


def show_login(request: Request, web: Web) -> Response:
    """GET /status/login: the form."""
    return login_page(next_url=_safe_next(request.args.get("next")))


def _cross_site(request: Request, web: Web) -> Response | None:
    if same_origin(request, web.config.web.base_url):
        return None
    log.warning("refused a cross-site %s from %s (Origin %r)", request.path,
                request.remote_addr, request.headers.get("Origin", "")[:100])
    return login_page("This form was sent from another site; nothing was done.", status=403)


def _authenticate(web: Web, name: str, password: str) -> bool:
    """Check a user's password, copying and upgrading older hashes on success."""
    store = web.store()
    stored = accounts.get_user(store, name)
    if stored is not None and stored.removed:
        accounts.burn_time(password)
        return False
    try:
        from_file = read_users(web.config.status.users_file).get(name)
    except ConfigError as error:
        log.warning("status page login: %s", "; ".join(error.problems))
        from_file = None
    if stored is not None and (stored.source == "store" or stored.file_hash == from_file):
        if not verify_password(password, stored.password_hash):
            return False
        if accounts.needs_upgrade(stored.password_hash):
            accounts.upgrade_hash(store, name, hash_password(password))
        return True
    if from_file is None:
        accounts.burn_time(password)
        return False
    if not verify_password(password, from_file):
        return False
    # First login of a users-file account (or its line changed): keep it here, scrypt.
    accounts.set_user(store, name, hash_password(password), web.now(), source="file",
                      file_hash=from_file)
    return True


def do_login(request: Request, web: Web) -> Response:
    """POST /status/login: check the throttle and the password, set the session cookie."""
    from werkzeug.utils import redirect

    refused = _cross_site(request, web)
    if refused is not None:
        return refused
    next_url = _safe_next(request.form.get("next"))
    name = request.form.get("user", "")[:accounts.MAX_NAME_LENGTH * 2]
    password = request.form.get("password", "")
    address = accounts.client_key(request.remote_addr)
    now = web.now()
    holds: _Holds = web.shared.setdefault("login_holds", _Holds())
    keys = (("address", address), ("user", name[:accounts.MAX_NAME_LENGTH * 2]))
    held = holds.wait(keys, now)
    if held:
        return _throttled(held, next_url, f"Too many failed logins; try again in {held} "
                                          "seconds.")
    if not _checking.acquire(blocking=False):
        log.warning("status page login refused while busy: user %r from %s", name, address)
        return _throttled(1, next_url, "The server is checking other logins; try again "
                                       "in a second.")
    store = web.store()
    try:
        waits, attempt = accounts.claim_attempt(store, address, name, now)
        if waits:
            for key, seconds in waits.items():
                holds.hold((key,), now + timedelta(seconds=seconds))
            wait = max(waits.values())
            log.warning("status page login throttled: user %r from %s", name, address)
            return _throttled(wait, next_url,
                              f"Too many failed logins; try again in {wait} seconds.")
        valid = (len(password) <= accounts.MAX_PASSWORD_LENGTH
                 and _authenticate(web, name, password))
    finally:
        _checking.release()
    if not valid:
        log.warning("status page login failed: user %r from %s", name, address)
        return login_page("Wrong user name or password.", next_url, status=401)
    accounts.forget_attempt(store, attempt)
    log.info("status page login: user %r from %s", name, address)
    lifetime = web.config.status.session_lifetime
    response: Response = redirect(next_url, code=303)
    response.set_cookie(
        COOKIE, accounts.create_session(store, name, now, lifetime),
        max_age=int(lifetime), path=COOKIE_PATH, httponly=True,
        samesite="Strict", secure=web.config.web.base_url.startswith("https://"),
    )
    return response


def _throttled(wait: int, next_url: str, message: str) -> Response:
    response = login_page(message, next_url, status=429)
    response.headers["Retry-After"] = str(wait)
    return response


def do_logout(request: Request, web: Web) -> Response:
    """POST /status/logout: end the session on the server and forget the cookie."""
    from werkzeug.utils import redirect

    refused = _cross_site(request, web)
    if refused is not None:
        return refused
    accounts.end_session(web.store(), request.cookies.get(COOKIE))
    response: Response = redirect("/status/login", code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict")
    return response


def routes() -> list[Rule]:
    """Return the login and logout routes."""
    from werkzeug.routing import Rule

    return [
        Rule("/status/login", endpoint=show_login, methods=["GET"]),
        Rule("/status/login", endpoint=do_login, methods=["POST"]),
        Rule("/status/logout", endpoint=do_logout, methods=["POST"]),
    ]

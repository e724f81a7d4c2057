"""The status page login: users from `status.users_file`, one signed session cookie.

Passwords are stored as PBKDF2-SHA256 hashes. The only cookie is the session: the user
name and expiry, signed with a key derived from `web.secret_file` (so a link-signing
secret is never used for anything else as is). It is HttpOnly, SameSite=Strict and, when
`web.base_url` is HTTPS, Secure. Unauthenticated requests are sent to the login form.

`python -m durability.web.auth USER` prints a `USER:HASH` line for the users file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from durability.errors import ConfigError
from durability.web.app import PAGE_STYLE

if TYPE_CHECKING:
    from werkzeug.routing import Rule
    from werkzeug.wrappers import Request, Response

    from durability.web.app import Web

COOKIE = "durability_session"
COOKIE_PATH = "/"
ITERATIONS = 200_000
# Seconds a failed login waits before answering, to slow down guessing.
FAILED_LOGIN_DELAY = 0.5


def hash_password(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """Given a password, return 'pbkdf2_sha256$ITERATIONS$SALT$HASH' (base64 parts)."""
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return "$".join(("pbkdf2_sha256", str(iterations), _b64(salt), _b64(digest)))


def verify_password(password: str, encoded: str) -> bool:
    """Given a password and a stored hash, return True if they match (constant time)."""
    try:
        scheme, iterations_text, salt_text, digest_text = encoded.split("$")
        iterations = int(iterations_text)
        salt, expected = _unb64(salt_text), _unb64(digest_text)
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256" or not 1000 <= iterations <= 10_000_000:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(digest, expected)


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
        if not sep or not user or not encoded.startswith("pbkdf2_sha256$"):
            raise ConfigError(
                [f"At 'status.users_file': line {number}: expected USER:pbkdf2_sha256$..."],
                source,
            )
        users[user] = encoded
    return users


def read_users(path: str | None) -> dict[str, str]:
    """Given `status.users_file`, return its users. Raise ConfigError if unset or unusable."""
    if not path:
        raise ConfigError(["At 'status.users_file': not set, so the status page is closed"])
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_users(handle.read(), path)
    except OSError as error:
        raise ConfigError([f"At 'status.users_file': cannot read {path}: {error.strerror}"]) \
            from error


def session_key(secret: bytes) -> bytes:
    """Given the web secret, return the key that signs session cookies."""
    return hmac.new(secret, b"durability status session v1", hashlib.sha256).digest()


def make_session(key: bytes, user: str, now: datetime, lifetime: float) -> str:
    """Given the session key, a user, the time and a lifetime, return a cookie value."""
    expires = int(now.timestamp() + lifetime)
    body = f"{_b64(user.encode('utf-8'))}.{expires}"
    return f"{body}.{_mac(key, body)}"


def check_session(key: bytes, value: str | None, now: datetime) -> str | None:
    """Given a cookie value, return its user if it is genuine and unexpired, else None."""
    if not value or value.count(".") != 2:
        return None
    user_text, expires_text, mac = value.split(".")
    body = f"{user_text}.{expires_text}"
    if not hmac.compare_digest(_mac(key, body), mac):
        return None
    try:
        if int(expires_text) <= now.timestamp():
            return None
        return _unb64(user_text).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(web: Web) -> bytes:
    from durability.web.signing import read_secret

    return session_key(read_secret(web.config.web.secret_file))


def current_user(request: Request, web: Web) -> str | None:
    """Return the logged-in user of a request, or None (also when the login is closed)."""
    try:
        key = _key(web)
        users = read_users(web.config.status.users_file)
    except ConfigError:
        return None
    user = check_session(key, request.cookies.get(COOKIE), web.now())
    # A user removed from the file loses access at once, whatever the cookie says.
    return user if user in users else None


def login_redirect(request: Request) -> Response:
    """Return the answer to an unauthenticated request: to the login form."""
    from werkzeug.utils import redirect

    target = request.full_path.rstrip("?") if request.method == "GET" else "/status"
    response: Response = redirect(f"/status/login?next={quote(target, safe='/')}", code=303)
    return response


def _safe_next(value: str | None) -> str:
    # Only local paths under /status: never an open redirect.
    if not value:
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
    return Response(body, status=status, content_type="text/html; charset=utf-8")


def show_login(request: Request, web: Web) -> Response:
    """GET /status/login: the form (or a clear refusal if no login is configured)."""
    try:
        read_users(web.config.status.users_file)
        _key(web)
    except ConfigError as error:
        return login_page(f"The status page is closed: {'; '.join(error.problems)}",
                          status=503)
    return login_page(next_url=_safe_next(request.args.get("next")))


def do_login(request: Request, web: Web) -> Response:
    """POST /status/login: check the password, set the session cookie, go on."""
    from werkzeug.utils import redirect

    next_url = _safe_next(request.form.get("next"))
    try:
        users = read_users(web.config.status.users_file)
        key = _key(web)
    except ConfigError as error:
        return login_page(f"The status page is closed: {'; '.join(error.problems)}",
                          status=503)
    user = request.form.get("user", "")
    encoded = users.get(user)
    # Hash even for an unknown user, so timing does not tell which names exist.
    valid = verify_password(request.form.get("password", ""),
                            encoded or hash_password("", b"0" * 16, ITERATIONS))
    if encoded is None or not valid:
        time.sleep(FAILED_LOGIN_DELAY)
        return login_page("Wrong user name or password.", next_url, status=401)
    response: Response = redirect(next_url, code=303)
    response.set_cookie(
        COOKIE, make_session(key, user, web.now(), web.config.status.session_lifetime),
        max_age=int(web.config.status.session_lifetime), path=COOKIE_PATH, httponly=True,
        samesite="Strict", secure=web.config.web.base_url.startswith("https://"),
    )
    return response


def do_logout(request: Request, web: Web) -> Response:
    """POST /status/logout: forget the session cookie."""
    from werkzeug.utils import redirect

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


def main() -> None:
    """Print a users-file line for the user named on the command line."""
    import getpass
    import sys

    if len(sys.argv) != 2 or ":" in sys.argv[1]:
        sys.stderr.write("usage: python -m durability.web.auth USER\n")
        raise SystemExit(3)
    first = getpass.getpass("Password: ")
    if len(first) < 10:
        sys.stderr.write("use a password of at least 10 characters\n")
        raise SystemExit(3)
    if getpass.getpass("Again: ") != first:
        sys.stderr.write("the passwords differ\n")
        raise SystemExit(3)
    sys.stdout.write(f"{sys.argv[1]}:{hash_password(first)}\n")


if __name__ == "__main__":
    main()

"""Status page accounts, their sessions, login throttling and fleet node tokens.

Everything here lives in the state store (component "accounts"), so it holds across
restarts and is shared by every service on one PostgreSQL:

- `web_users`: accounts made with `durability users add` (werkzeug's scrypt hashes).
  Accounts of the older `status.users_file` are still accepted; at their first login
  they are copied here with a scrypt hash (the file's PBKDF2 hash is never kept), and
  they keep following the file: a line removed or changed there ends them.
- `web_sessions`: one row per login; the cookie holds a random id, the table its
  SHA-256. Logout deletes the row; removing a user or changing a password deletes all
  of that user's rows.
- `web_login_failures`: login attempts per client (`client_key`: an IPv4 address, or
  the /64 network of an IPv6 one) and per user name, for the throttle
  (`THROTTLE_FAILURES` within `THROTTLE_WINDOW` seconds). An attempt counts
  from before its password is checked (so concurrent guesses cannot slip past the
  limit) and is forgotten when it succeeds.
- `fleet_nodes`: nodes made with `durability nodes add`, with the SHA-256 of their
  token (the token itself is shown once and never stored).
- `fleet_removed_nodes`: nodes removed with `durability nodes remove`, so a line still
  in `status.node_tokens_file` stays refused (until the node is added again).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources

from durability.model import isoformat_z

TYPE_CHECKING = False
if TYPE_CHECKING:
    from durability.state.store import Store

# Failed logins allowed per client address, and per user name, within the window.
THROTTLE_FAILURES = 10
THROTTLE_WINDOW = 15 * 60
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MAX_NAME_LENGTH = 64
_LEGACY_SCHEME = "pbkdf2_sha256$"

MIGRATIONS = (
    """
    CREATE TABLE web_users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        source TEXT NOT NULL,
        file_hash TEXT,
        changed_at TEXT NOT NULL,
        removed_at TEXT
    );
    CREATE TABLE web_sessions (
        id_hash TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    CREATE INDEX web_sessions_name ON web_sessions (name);
    CREATE TABLE web_login_failures (
        id {id},
        scope TEXT NOT NULL,
        subject TEXT NOT NULL,
        at TEXT NOT NULL,
        attempt TEXT NOT NULL
    );
    CREATE INDEX web_login_failures_subject ON web_login_failures (scope, subject, at);
    CREATE TABLE fleet_nodes (
        node TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
    """
    CREATE TABLE fleet_removed_nodes (
        node TEXT PRIMARY KEY,
        removed_at TEXT NOT NULL
    );
    """,
)


@dataclass(frozen=True)
class UserRecord:
    """One account as the store keeps it."""

    name: str
    password_hash: str
    source: str  # "store" (users add) or "file" (copied from status.users_file)
    file_hash: str | None
    changed_at: str
    removed: bool


@dataclass(frozen=True)
class NodeRecord:
    """One fleet node allowed to report."""

    node: str
    created_at: str


def _migrate(store: Store) -> None:
    store.migrate("accounts", MIGRATIONS)


# -- passwords ----------------------------------------------------------------------------
def hash_password(password: str, iterations: int | None = None) -> str:
    """Given a password, return its werkzeug hash (scrypt).

    `iterations` makes a PBKDF2-SHA256 hash of that many rounds instead, as older
    users files hold (cheap hashes for tests).
    """
    from werkzeug.security import generate_password_hash

    method = f"pbkdf2:sha256:{iterations}" if iterations else "scrypt"
    return generate_password_hash(password, method=method)


def verify_password(password: str, encoded: str) -> bool:
    """Given a password and a stored hash (werkzeug or the first PBKDF2 form), check them."""
    from werkzeug.security import check_password_hash

    if encoded.startswith(_LEGACY_SCHEME):
        return _verify_first_form(password, encoded)
    try:
        return check_password_hash(encoded, password)
    except (ValueError, TypeError):
        return False


def needs_upgrade(encoded: str) -> bool:
    """Return True if a stored hash is not (yet) scrypt."""
    return not encoded.startswith("scrypt:")


def _verify_first_form(password: str, encoded: str) -> bool:
    # 'pbkdf2_sha256$ITERATIONS$SALT$HASH' (base64url parts), as first written.
    from durability.web.signing import b64decode_canonical

    try:
        _scheme, iterations_text, salt_text, digest_text = encoded.split("$")
        iterations = int(iterations_text)
        salt, expected = b64decode_canonical(salt_text), b64decode_canonical(digest_text)
    except ValueError:
        return False
    if not 1000 <= iterations <= 10_000_000:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(digest, expected)


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def burn_time(password: str) -> None:
    """Hash a password against nothing, so an unknown user costs as long as a known one."""
    verify_password(password, _dummy_hash())


@cache
def common_passwords() -> frozenset[str]:
    """Return the known-common passwords refused for accounts (lower case)."""
    text = resources.files("durability.web").joinpath("common-passwords.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))


def password_problem(password: str, user: str = "") -> str | None:
    """Given a new password, return why the provider's policy refuses it, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password is shorter than {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"the password is longer than {MAX_PASSWORD_LENGTH} characters"
    missing = [what for what, present in (
        ("an upper case letter", any(c.isupper() for c in password)),
        ("a lower case letter", any(c.islower() for c in password)),
        ("a digit", any(c.isdigit() for c in password)),
    ) if not present]
    if missing:
        return "the password needs " + " and ".join(missing)
    if password.lower() in common_passwords():
        return "the password is on the list of common passwords"
    if user and user.lower() in password.lower():
        return "the password contains the user name"
    return None


def name_problem(name: str, what: str = "user name") -> str | None:
    """Given a user or node name, return why it cannot be one, or None."""
    if not name or len(name) > MAX_NAME_LENGTH:
        return f"a {what} has 1 to {MAX_NAME_LENGTH} characters"
    if name.startswith("-") or not all(c.isalnum() or c in "._-@" for c in name):
        return f"a {what} has letters, digits and . _ - @ only, and does not start with -"
    return None


# -- users --------------------------------------------------------------------------------
def get_user(store: Store, name: str) -> UserRecord | None:
    """Return the stored account of a name (also a removed one), or None."""
    _migrate(store)
    row = store.query_one(
        "SELECT name, password_hash, source, file_hash, changed_at, removed_at"
        " FROM web_users WHERE name = ?", (name,))
    if row is None:
        return None
    return UserRecord(row[0], row[1], row[2], row[3], row[4], row[5] is not None)


def list_users(store: Store) -> list[UserRecord]:
    """Return the accounts that may log in, by name."""
    _migrate(store)
    rows = store.query(
        "SELECT name, password_hash, source, file_hash, changed_at FROM web_users"
        " WHERE removed_at IS NULL ORDER BY name")
    return [UserRecord(r[0], r[1], r[2], r[3], r[4], False) for r in rows]


def set_user(store: Store, name: str, password_hash: str, now: datetime,
             source: str = "store", file_hash: str | None = None) -> bool:
    """Store an account (new, or a new password) and end its sessions.

    Return True if the name was new (or had been removed).
    """
    _migrate(store)
    stamp = isoformat_z(now)
    with store.transaction():
        row = store.query_one("SELECT removed_at FROM web_users WHERE name = ?", (name,))
        if row is None:
            store.execute(
                "INSERT INTO web_users (name, password_hash, source, file_hash, changed_at)"
                " VALUES (?, ?, ?, ?, ?)", (name, password_hash, source, file_hash, stamp))
        else:
            store.execute(
                "UPDATE web_users SET password_hash = ?, source = ?, file_hash = ?,"
                " changed_at = ?, removed_at = NULL WHERE name = ?",
                (password_hash, source, file_hash, stamp, name))
        store.execute("DELETE FROM web_sessions WHERE name = ?", (name,))
    return row is None or row[0] is not None


def upgrade_hash(store: Store, name: str, password_hash: str) -> None:
    """Replace an account's hash by a stronger one of the same password (sessions stay)."""
    _migrate(store)
    with store.transaction():
        store.execute("UPDATE web_users SET password_hash = ? WHERE name = ? AND"
                      " removed_at IS NULL", (password_hash, name))


def remove_user(store: Store, name: str, now: datetime) -> bool:
    """Remove an account and end its sessions; return False if it was not there.

    The name is kept as removed, so an entry still in `status.users_file` stays refused.
    """
    _migrate(store)
    stamp = isoformat_z(now)
    with store.transaction():
        row = store.query_one("SELECT removed_at FROM web_users WHERE name = ?", (name,))
        if row is None:
            store.execute(
                "INSERT INTO web_users (name, password_hash, source, changed_at, removed_at)"
                " VALUES (?, '', 'store', ?, ?)", (name, stamp, stamp))
        else:
            store.execute("UPDATE web_users SET password_hash = '', removed_at = ?"
                          " WHERE name = ?", (stamp, name))
        store.execute("DELETE FROM web_sessions WHERE name = ?", (name,))
    return row is not None and row[0] is None


# -- sessions -----------------------------------------------------------------------------
def _id_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def create_session(store: Store, name: str, now: datetime, lifetime: float) -> str:
    """Start a session for a user; return the cookie value (a random id)."""
    _migrate(store)
    value = secrets.token_urlsafe(32)
    with store.transaction():
        store.execute("DELETE FROM web_sessions WHERE expires_at < ?", (isoformat_z(now),))
        store.execute(
            "INSERT INTO web_sessions (id_hash, name, created_at, expires_at)"
            " VALUES (?, ?, ?, ?)",
            (_id_hash(value), name, isoformat_z(now),
             isoformat_z(now + timedelta(seconds=lifetime))))
    return value


def session_user(store: Store, value: str | None, now: datetime) -> UserRecord | None:
    """Given a cookie value, return its account if the session is live, else None."""
    if not value or len(value) > 200:
        return None
    _migrate(store)
    row = store.query_one("SELECT name, expires_at FROM web_sessions WHERE id_hash = ?",
                          (_id_hash(value),))
    if row is None or row[1] <= isoformat_z(now):
        return None
    user = get_user(store, row[0])
    return None if user is None or user.removed else user


def end_session(store: Store, value: str | None) -> None:
    """End one session (logout); an unknown value changes nothing."""
    if not value or len(value) > 200:
        return
    _migrate(store)
    with store.transaction():
        store.execute("DELETE FROM web_sessions WHERE id_hash = ?", (_id_hash(value),))


# -- login throttle -----------------------------------------------------------------------
def claim_attempt(
    store: Store, address: str, name: str, now: datetime,
) -> tuple[dict[tuple[str, str], int], str]:
    """Count a login attempt from `address` for `name`, unless it must wait.

    Return ({(scope, subject): seconds to wait}, "") for the address and/or name that
    had `THROTTLE_FAILURES` attempts within the window (nothing is counted then), else
    ({}, attempt id); pass the id to `forget_attempt` when the password was right.
    """
    from durability.remind.records import parse_time

    _migrate(store)
    since = isoformat_z(now - timedelta(seconds=THROTTLE_WINDOW))
    subjects = (("address", address), ("user", name[:MAX_NAME_LENGTH * 2]))
    with store.transaction():
        store.execute("DELETE FROM web_login_failures WHERE at < ?", (since,))
        waits: dict[tuple[str, str], int] = {}
        for scope, subject in subjects:
            row = store.query_one(
                "SELECT COUNT(*), MIN(at) FROM web_login_failures"
                " WHERE scope = ? AND subject = ? AND at >= ?", (scope, subject, since))
            oldest = parse_time(row[1]) if row and int(row[0]) >= THROTTLE_FAILURES else None
            if oldest is not None:
                left = (oldest + timedelta(seconds=THROTTLE_WINDOW) - now).total_seconds()
                waits[(scope, subject)] = int(left) + 1
        if waits:
            return waits, ""
        attempt = secrets.token_hex(8)
        store.executemany(
            "INSERT INTO web_login_failures (scope, subject, at, attempt) VALUES (?, ?, ?, ?)",
            [(scope, subject, isoformat_z(now), attempt) for scope, subject in subjects])
    return {}, attempt


def forget_attempt(store: Store, attempt: str) -> None:
    """Forget a login attempt that succeeded (it no longer counts against anyone)."""
    _migrate(store)
    with store.transaction():
        store.execute("DELETE FROM web_login_failures WHERE attempt = ?", (attempt,))


# -- fleet nodes --------------------------------------------------------------------------
def token_hash(token: str) -> str:
    """Given a node token, return its SHA-256 hex digest (what the server keeps)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_node(store: Store, node: str, now: datetime) -> str:
    """Make a new token for a node (replacing any earlier one); return the token."""
    _migrate(store)
    token = secrets.token_urlsafe(32)
    with store.transaction():
        store.execute("DELETE FROM fleet_removed_nodes WHERE node = ?", (node,))
        store.execute("DELETE FROM fleet_nodes WHERE node = ?", (node,))
        store.execute("INSERT INTO fleet_nodes (node, token_hash, created_at) VALUES (?, ?, ?)",
                      (node, token_hash(token), isoformat_z(now)))
    return token


def remove_node(store: Store, node: str, now: datetime) -> bool:
    """Forget a node's token and refuse the node; return False if it had no stored token.

    The node stays refused even while `status.node_tokens_file` still names it.
    """
    _migrate(store)
    with store.transaction():
        cursor = store.execute("DELETE FROM fleet_nodes WHERE node = ?", (node,))
        store.execute("DELETE FROM fleet_removed_nodes WHERE node = ?", (node,))
        store.execute("INSERT INTO fleet_removed_nodes (node, removed_at) VALUES (?, ?)",
                      (node, isoformat_z(now)))
        return int(cursor.rowcount) > 0


def removed_nodes(store: Store) -> set[str]:
    """Return the nodes removed with `durability nodes remove` (and not added since)."""
    _migrate(store)
    return {r[0] for r in store.query("SELECT node FROM fleet_removed_nodes")}


def list_nodes(store: Store) -> list[NodeRecord]:
    """Return the nodes allowed to report, by name."""
    _migrate(store)
    return [NodeRecord(r[0], r[1]) for r in
            store.query("SELECT node, created_at FROM fleet_nodes ORDER BY node")]


def node_digests(store: Store) -> dict[str, str]:
    """Return {node: token SHA-256} of the stored nodes."""
    _migrate(store)
    return {r[0]: r[1] for r in store.query("SELECT node, token_hash FROM fleet_nodes")}


def client_key(address: str | None) -> str:
    """Given a client's address, return the key its logins and connections count under.

    One IPv6 host commonly holds a whole /64 (and may pick any address in it), so an
    IPv6 client counts as its /64 network; an IPv4-mapped IPv6 address counts as the
    IPv4 address; anything that is not an address is kept as it is.
    """
    if not address:
        return "unknown"
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)

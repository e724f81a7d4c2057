"""Signed customer links: HMAC-SHA256 tokens carrying customer, action, issue and expiry.

A token is `PAYLOAD.MAC`, both base64url without padding. The payload is
`customer|action|issued|expires` (Unix seconds; expires 0 means never, as for
unsubscribe links). Only the holder of the secret can make one; the MAC is compared
in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from durability.errors import ConfigError, DurabilityError

ACTIONS = ("confirm", "snooze", "unsubscribe")
# Confirm and snooze links expire (mail is forwarded and archived); unsubscribe never does.
LINK_LIFETIME_SECONDS = 60 * 86400


class TokenError(DurabilityError):
    """A link token is malformed, tampered with, expired or for another action."""


@dataclass(frozen=True)
class LinkToken:
    """What a verified token says."""

    customer_id: str
    action: str
    issued_at: datetime
    expires_at: datetime | None
    mac: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(
    secret: bytes, customer_id: str, action: str, issued_at: datetime,
    lifetime_seconds: int | None = None,
) -> str:
    """Given the secret, a customer, an action and the issue time, return a token.

    `lifetime_seconds` defaults to 60 days for confirm and snooze, never for unsubscribe.
    Raise ValueError for an unknown action or a customer id containing '|'.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown link action {action!r}")
    if "|" in customer_id:
        raise ValueError("customer id must not contain '|'")
    issued = int(issued_at.timestamp())
    if lifetime_seconds is None:
        lifetime_seconds = 0 if action == "unsubscribe" else LINK_LIFETIME_SECONDS
    expires = issued + lifetime_seconds if lifetime_seconds else 0
    payload = f"{customer_id}|{action}|{issued}|{expires}".encode()
    mac = hmac.new(secret, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def verify_token(secret: bytes, token: str, action: str, now: datetime) -> LinkToken:
    """Given the secret, a token, the action of the URL and `now`, return what it says.

    Raise TokenError if it is malformed, its MAC is wrong, it is for another action or
    it has expired.
    """
    try:
        payload_text, mac_text = token.split(".")
        payload, mac = _unb64(payload_text), _unb64(mac_text)
    except (ValueError, binascii.Error) as error:
        raise TokenError("this link is damaged (it may have been cut or changed)") from error
    expected = hmac.new(secret, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise TokenError("this link is not valid (it may have been cut or changed)")
    try:
        customer_id, token_action, issued_text, expires_text = payload.decode().split("|")
        issued, expires = int(issued_text), int(expires_text)
    except (UnicodeDecodeError, ValueError) as error:
        raise TokenError("this link is damaged") from error
    if token_action != action:
        raise TokenError("this link is for a different action")
    expires_at = datetime.fromtimestamp(expires, UTC) if expires else None
    if expires_at is not None and now >= expires_at:
        raise TokenError("this link has expired; the next reminder brings a fresh one")
    return LinkToken(customer_id, token_action, datetime.fromtimestamp(issued, UTC),
                     expires_at, mac_text)


def read_secret(path: str | None) -> bytes:
    """Given `web.secret_file`, return the secret. Raise ConfigError if unset or unusable."""
    if not path:
        raise ConfigError(["At 'web.secret_file': required to sign customer links"])
    try:
        with open(path, "rb") as handle:
            secret = handle.read().strip()
    except OSError as error:
        raise ConfigError([f"At 'web.secret_file': cannot read {path}: {error.strerror}"]) \
            from error
    if len(secret) < 16:
        raise ConfigError(
            [f"At 'web.secret_file': {path} holds fewer than 16 bytes; make a longer secret"]
        )
    return secret


def link_url(base_url: str, action: str, token: str) -> str:
    """Return the public URL of one customer link."""
    return f"{base_url.rstrip('/')}/l/{action}/{token}"

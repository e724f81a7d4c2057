"""Customer link tokens: opaque, authenticated, with one spelling each.

A token is base64url without padding of `VERSION | NONCE | AES-256-GCM(PAYLOAD)`: the
payload (`customer|action|issued|expires`, Unix seconds, expires 0 for never, as for
unsubscribe links) is encrypted and authenticated with a key derived (HKDF-SHA256) from
`web.secret_file`, so a link carries nothing a reader can use: not the customer id, not
the action's dates. Only the holder of the secret can make or read one.

A token has exactly one accepted spelling: padding, other alphabets and changed unused
bits are refused, and the replay key (`LinkToken.key`) is a digest of the decoded bytes,
so no re-encoding of a used link is new. Links of the first format (`PAYLOAD.MAC`, HMAC
signed, customer id readable) sent before are still accepted until they expire.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from durability.errors import ConfigError, DurabilityError

ACTIONS = ("confirm", "snooze", "unsubscribe")
# Confirm and snooze links expire (mail is forwarded and archived); unsubscribe never does.
LINK_LIFETIME_SECONDS = 60 * 86400
# A URL path segment longer than this is not one of our tokens.
MAX_TOKEN_CHARS = 400
_VERSION = b"\x02"
_NONCE_BYTES = 12
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


class TokenError(DurabilityError):
    """A link token is malformed, tampered with, expired or for another action.

    `reason` says which, for the pages a customer sees: "damaged", "expired" or "action"
    (then `token_action` is the authenticated action the token is really for).
    """

    def __init__(self, message: str, reason: str = "damaged", token_action: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.token_action = token_action


@dataclass(frozen=True)
class LinkToken:
    """What a verified token says; `key` names the link for replay detection."""

    customer_id: str
    action: str
    issued_at: datetime
    expires_at: datetime | None
    key: str


def b64encode(data: bytes) -> str:
    """Return base64url text without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode_canonical(text: str) -> bytes:
    """Given base64url text without padding, return its bytes.

    Raise ValueError for anything but the one canonical spelling (no padding, no other
    characters, unused bits zero), so that each value has exactly one text.
    """
    if not text or not _B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not canonical base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64encode(data) != text:
        raise ValueError("not canonical base64url")
    return data


def _link_key(secret: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"durability customer links v2").derive(secret)


def sign_token(
    secret: bytes, customer_id: str, action: str, issued_at: datetime,
    lifetime_seconds: int | None = None,
) -> str:
    """Given the secret, a customer, an action and the issue time, return a token.

    `lifetime_seconds` defaults to 60 days for confirm and snooze, never for unsubscribe.
    Raise ValueError for an unknown action or a customer id containing '|'.
    """
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if action not in ACTIONS:
        raise ValueError(f"unknown link action {action!r}")
    if "|" in customer_id:
        raise ValueError("customer id must not contain '|'")
    issued = int(issued_at.timestamp())
    if lifetime_seconds is None:
        lifetime_seconds = 0 if action == "unsubscribe" else LINK_LIFETIME_SECONDS
    expires = issued + lifetime_seconds if lifetime_seconds else 0
    payload = f"{customer_id}|{action}|{issued}|{expires}".encode()
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(_link_key(secret)).encrypt(nonce, payload, _VERSION)
    return b64encode(_VERSION + nonce + sealed)


def verify_token(secret: bytes, token: str, action: str, now: datetime) -> LinkToken:
    """Given the secret, a token, the action of the URL and `now`, return what it says.

    Raise TokenError if it is malformed or not canonical, fails authentication, is for
    another action or has expired.
    """
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenError("this link is damaged (it may have been cut or changed)")
    if "." in token:
        payload, key = _open_first_format(secret, token)
    else:
        payload, key = _open(secret, token)
    try:
        customer_id, token_action, issued_text, expires_text = payload.decode().split("|")
        issued, expires = int(issued_text), int(expires_text)
    except (UnicodeDecodeError, ValueError) as error:
        raise TokenError("this link is damaged") from error
    if token_action != action:
        raise TokenError("this link is for a different action", "action", token_action)
    expires_at = datetime.fromtimestamp(expires, UTC) if expires else None
    if expires_at is not None and now >= expires_at:
        raise TokenError("this link has expired; the next reminder brings a fresh one", "expired")
    return LinkToken(customer_id, token_action, datetime.fromtimestamp(issued, UTC),
                     expires_at, key)


def _open(secret: bytes, token: str) -> tuple[bytes, str]:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        raw = b64decode_canonical(token)
    except (ValueError, binascii.Error) as error:
        raise TokenError("this link is damaged (it may have been cut or changed)") from error
    if len(raw) < 1 + _NONCE_BYTES + 16 or raw[:1] != _VERSION:
        raise TokenError("this link is damaged (it may have been cut or changed)")
    nonce, sealed = raw[1:1 + _NONCE_BYTES], raw[1 + _NONCE_BYTES:]
    try:
        payload = AESGCM(_link_key(secret)).decrypt(nonce, sealed, _VERSION)
    except InvalidTag as error:
        raise TokenError("this link is not valid (it may have been cut or changed)") from error
    return payload, hashlib.sha256(raw).hexdigest()


def _open_first_format(secret: bytes, token: str) -> tuple[bytes, str]:
    # PAYLOAD.MAC, HMAC-SHA256 over the payload; its key is the MAC's canonical text,
    # as it was recorded when such links were used.
    try:
        payload_text, mac_text = token.split(".")
        payload, mac = b64decode_canonical(payload_text), b64decode_canonical(mac_text)
    except (ValueError, binascii.Error) as error:
        raise TokenError("this link is damaged (it may have been cut or changed)") from error
    expected = hmac.new(secret, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise TokenError("this link is not valid (it may have been cut or changed)")
    return payload, mac_text


def read_secret(path: str | None) -> bytes:
    """Given `web.secret_file`, return the secret. Raise ConfigError if unset or unusable."""
    from durability.secrets import SecretFileError, read_secret_bytes

    if not path:
        raise ConfigError(["At 'web.secret_file': required to sign customer links"])
    try:
        secret = read_secret_bytes(path, "web.secret_file")
    except SecretFileError as error:
        raise ConfigError([str(error)]) from error
    if len(secret) < 16:
        raise ConfigError(
            [f"At 'web.secret_file': {path} holds fewer than 16 bytes; make a longer secret"]
        )
    return secret


def link_url(base_url: str, action: str, token: str) -> str:
    """Return the public URL of one customer link."""
    return f"{base_url.rstrip('/')}/l/{action}/{token}"

"""Signed link tokens: round trip, tampering, expiry, actions, secrets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from durability.errors import ConfigError
from durability.web.signing import TokenError, read_secret, sign_token, verify_token

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_verify_token_round_trip_carries_customer_and_times() -> None:
    link = verify_token(SECRET, sign_token(SECRET, "c-1", "snooze", NOW), "snooze", NOW)
    assert (link.customer_id, link.action, link.issued_at) == ("c-1", "snooze", NOW)
    assert link.expires_at == NOW + timedelta(days=60)


def test_verify_token_other_secret_rejected() -> None:
    token = sign_token(b"another-secret-of-enough-length", "c-1", "confirm", NOW)
    with pytest.raises(TokenError, match="not valid"):
        verify_token(SECRET, token, "confirm", NOW)


def test_verify_token_other_action_rejected() -> None:
    with pytest.raises(TokenError, match="different action"):
        verify_token(SECRET, sign_token(SECRET, "c-1", "confirm", NOW), "unsubscribe", NOW)


def test_verify_token_expiry_boundary() -> None:
    token = sign_token(SECRET, "c-1", "confirm", NOW)
    verify_token(SECRET, token, "confirm", NOW + timedelta(days=60, seconds=-1))
    with pytest.raises(TokenError, match="expired"):
        verify_token(SECRET, token, "confirm", NOW + timedelta(days=60))


def test_sign_token_unsubscribe_never_expires() -> None:
    token = sign_token(SECRET, "c-1", "unsubscribe", NOW)
    assert verify_token(SECRET, token, "unsubscribe", NOW + timedelta(days=3650)).expires_at \
        is None


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "!!!.###", "YQ.YQ"])
def test_verify_token_malformed_rejected(token: str) -> None:
    with pytest.raises(TokenError):
        verify_token(SECRET, token, "confirm", NOW)


def test_read_secret_missing_short_unset_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="required"):
        read_secret(None)
    with pytest.raises(ConfigError, match="cannot read"):
        read_secret(str(tmp_path / "none"))
    short = tmp_path / "short"
    short.write_text("tiny\n")
    with pytest.raises(ConfigError, match="fewer than 16 bytes"):
        read_secret(str(short))


def test_sign_token_carries_nothing_readable() -> None:
    import base64

    token = sign_token(SECRET, "c-1001", "confirm", NOW)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for readable in (b"c-1001", b"confirm", str(int(NOW.timestamp())).encode()):
        assert readable not in raw
    assert "c-1001" not in token
    assert token != sign_token(SECRET, "c-1001", "confirm", NOW)


@pytest.mark.parametrize("change", ["pad", "pad2", "unused-bits", "plus", "space"])
def test_verify_token_other_spelling_rejected(change: str) -> None:
    token = sign_token(SECRET, "c-1", "confirm", NOW)
    verify_token(SECRET, token, "confirm", NOW)
    if change == "pad":
        spelled = token + "="
    elif change == "pad2":
        spelled = token + "=="
    elif change == "plus":
        spelled = token.replace("-", "+").replace("_", "/") if "-" in token or "_" in token \
            else token + "+"
    elif change == "space":
        spelled = token + " "
    else:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        unused = {2: 0b1111, 3: 0b11}.get(len(token) % 4, 0)
        if not unused:  # no unused bits at this length: the spelling is unique already
            spelled = token + "A"
        else:
            last = alphabet.index(token[-1])
            spelled = token[:-1] + alphabet[last ^ 1]
    with pytest.raises(TokenError):
        verify_token(SECRET, spelled, "confirm", NOW)


def test_verify_token_first_format_accepted_keyed_by_mac() -> None:
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    payload = f"c-1|confirm|{int(NOW.timestamp())}|{int(NOW.timestamp()) + 86400}".encode()
    mac = b64(hmac.new(SECRET, payload, hashlib.sha256).digest())
    link = verify_token(SECRET, f"{b64(payload)}.{mac}", "confirm", NOW)
    assert (link.customer_id, link.key) == ("c-1", mac)
    with pytest.raises(TokenError):
        verify_token(SECRET, f"{b64(payload)}.{mac}=", "confirm", NOW)

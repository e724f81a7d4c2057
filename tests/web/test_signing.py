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

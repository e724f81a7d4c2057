"""PostgreSQL connection for the state store (psycopg 3), imported only when configured."""

from __future__ import annotations

import re

from durability.errors import StateError
from durability.state.store import Store

_PASSWORD_IN_URL = re.compile(r"(://[^:/@]+):[^@]*@")


def redact_url(url: str) -> str:
    """Return the URL with any password replaced by ***."""
    return _PASSWORD_IN_URL.sub(r"\1:***@", url)


def open_postgres(url: str) -> Store:
    """Connect to PostgreSQL. Raise StateError naming the (redacted) URL and the reason."""
    try:
        import psycopg
    except ImportError as error:
        raise StateError(
            "state.url is PostgreSQL but psycopg is not installed: "
            "pip install 'durability[postgresql]'"
        ) from error
    shown = redact_url(url)
    try:
        connection = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as error:
        message = redact_url(str(error)).splitlines()[0] if str(error) else type(error).__name__
        raise StateError(f"cannot open state store {shown}: {message}") from error
    return _PostgresStore(connection, "postgresql", shown)


class _PostgresStore(Store):
    """PostgreSQL in autocommit mode; `transaction()` opens an explicit transaction."""

    def transaction(self):  # type: ignore[no-untyped-def,override]  # noqa: D102
        import contextlib

        import psycopg

        @contextlib.contextmanager
        def block():  # type: ignore[no-untyped-def]
            try:
                with self.connection.transaction():  # type: ignore[attr-defined]
                    yield self
            except psycopg.Error as error:
                raise StateError(f"state store {self.location}: {error}") from error

        return block()

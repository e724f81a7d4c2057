"""PostgreSQL connection for the state store (psycopg 3), imported only when configured.

The same portable SQL runs here as on SQLite: `Store.sql` turns each `?` in code into
the server's `$N` placeholder and the statement goes through psycopg's raw cursor, so
a `?` or `%` inside a literal is just text. What differs: the connection is in
autocommit mode and `transaction()` opens an explicit transaction; migrations take a
transaction-scoped advisory lock, so two processes starting at once (a cron job and the
service) never apply the same DDL twice; every driver error becomes a `StateError`
naming the database (never its password). TCP keepalives are on, so a connection to a
server that vanished fails within about half a minute instead of hanging.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

from durability.errors import StateError
from durability.state.store import Store

_PASSWORD_IN_URL = re.compile(r"(://[^:/@]+):[^@]*@")
# pg_advisory_xact_lock key shared by every durability process migrating one database.
_MIGRATION_LOCK = 0x6475726162


def redact_url(url: str) -> str:
    """Given a URL, return it with any password replaced by ***."""
    return _PASSWORD_IN_URL.sub(r"\1:***@", url)


def _reason(error: BaseException) -> str:
    text = str(error).strip()
    return redact_url(text.splitlines()[0]) if text else type(error).__name__


def open_postgres(url: str) -> Store:
    """Given a postgresql:// URL, return an open store.

    Raise StateError naming the (redacted) URL and the reason if it cannot connect.
    """
    try:
        import psycopg
    except ImportError as error:
        raise StateError(
            "state.url is PostgreSQL but psycopg is not installed: "
            "pip install 'durability[postgresql]'"
        ) from error
    shown = redact_url(url)
    try:
        connection = psycopg.connect(
            url, autocommit=True, connect_timeout=10, cursor_factory=psycopg.RawCursor,
            keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
            tcp_user_timeout=30000,
        )
    except psycopg.Error as error:
        raise StateError(f"cannot open state store {shown}: {_reason(error)}") from error
    return PostgresStore(connection, "postgresql", shown)


class PostgresStore(Store):
    """PostgreSQL in autocommit mode; `transaction()` opens an explicit transaction."""

    def execute(self, text: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement and return its cursor. Raise StateError on a database error."""
        import psycopg

        try:
            return super().execute(text, params)
        except psycopg.Error as error:
            raise StateError(f"state store {self.location}: {_reason(error)}") from error

    def executemany(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for many rows. Raise StateError on a database error."""
        import psycopg

        try:
            super().executemany(text, rows)
        except psycopg.Error as error:
            raise StateError(f"state store {self.location}: {_reason(error)}") from error

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """Run the block in one transaction: all of it is written, or none.

        Raise StateError on a database failure, with the store left as it was.
        """
        import psycopg

        try:
            with self.connection.transaction():  # type: ignore[attr-defined]
                if self.fence is not None:
                    self.fence(self)
                yield self
        except psycopg.Error as error:
            raise StateError(f"state store {self.location}: {_reason(error)}") from error

    def _lock_migrations(self) -> None:
        """Take the migration advisory lock until the end of the transaction."""
        self.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))

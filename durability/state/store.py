"""The state store: the one seam to the database (SQLite by default, PostgreSQL by URL).

Every feature keeps its own tables and migrations (a tuple of SQL scripts per
component, applied in order and recorded in `schema_migrations`), so features evolve
independently. SQL is written once with `?` placeholders and portable types; the
`{id}` marker in DDL becomes the dialect's auto-increment primary key.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from durability.errors import StateError
from durability.model import Report, isoformat_z

TYPE_CHECKING = False  # typing costs the cron job more than the check
if TYPE_CHECKING:
    from typing import Any, Protocol

if TYPE_CHECKING:

    class Connection(Protocol):
        """The part of a DB-API connection the store uses."""

        def cursor(self) -> Any: ...
        def commit(self) -> None: ...
        def rollback(self) -> None: ...
        def close(self) -> None: ...
else:
    Connection = object


_CORE_MIGRATIONS = (
    """
    CREATE TABLE results (
        id {id},
        run_id TEXT NOT NULL,
        check_name TEXT NOT NULL,
        target TEXT NOT NULL,
        status TEXT NOT NULL,
        summary TEXT NOT NULL,
        checked_at TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX results_check_time ON results (check_name, checked_at);
    CREATE INDEX results_target_time ON results (target, checked_at);
    """,
)


def default_sqlite_path() -> str:
    """Return the default SQLite path: /var/lib/durability for root, else XDG state."""
    if os.geteuid() == 0:
        return "/var/lib/durability/state.db"
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "durability", "state.db")


class Store:
    """An open state store. Use `transaction()` for every write."""

    def __init__(self, connection: Connection, dialect: str, location: str) -> None:
        self.connection = connection
        self.dialect = dialect
        self.location = location
        self._migrated: set[str] = set()
        # Called first in every write transaction of this store (see `transaction()`):
        # the service sets it on its jobs' stores so that an instance that is no longer
        # the active one cannot write anything. It raises StateError to refuse.
        self.fence: Callable[[Store], None] | None = None
        # Names the fence (the service lease holder and epoch) while one is set, so that
        # records a fenced-off instance left (a run lock) can be recognised as dead.
        self.fence_token: str | None = None

    # -- SQL helpers --------------------------------------------------------------------
    def sql(self, text: str) -> str:
        """Translate portable SQL (`?` placeholders) to this dialect.

        On PostgreSQL each `?` in code becomes `$1, $2, ...`; a `?` or `%` inside a
        literal, a quoted identifier or a comment is left alone (see `sqltext`).
        """
        if self.dialect == "postgresql":
            from durability.state.sqltext import numbered_placeholders

            return numbered_placeholders(text)
        return text

    def ddl(self, text: str) -> str:
        """Translate portable DDL (`{id}` primary keys, SQLite type names) to this dialect."""
        from durability.state.sqltext import translate_ddl

        return translate_ddl(text, self.dialect)

    def execute(self, text: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement and return its cursor. Raise StateError on a SQLite error."""
        cursor = self.connection.cursor()
        try:
            cursor.execute(self.sql(text), tuple(params))
        except sqlite3.Error as error:
            raise StateError(f"state store {self.location}: {error}") from error
        return cursor

    def query(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query and return all rows."""
        return [tuple(row) for row in self.execute(text, params).fetchall()]

    def query_one(self, text: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """Run a query and return its first row, or None."""
        row = self.execute(text, params).fetchone()
        return tuple(row) if row is not None else None

    def executemany(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows. Raise StateError on a SQLite error."""
        cursor = self.connection.cursor()
        try:
            cursor.executemany(self.sql(text), [tuple(r) for r in rows])
        except sqlite3.Error as error:
            raise StateError(f"state store {self.location}: {error}") from error

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """Run the block in one transaction: all of it is written, or none.

        Each backend overrides this (SQLite takes its write lock at the start with BEGIN
        IMMEDIATE; PostgreSQL uses psycopg's transaction block); this generic form only
        commits or rolls back. Raise StateError on a database failure, store unchanged.
        """
        try:
            if self.fence is not None:
                self.fence(self)
            yield self
            self.connection.commit()
        except BaseException as error:
            with contextlib.suppress(Exception):
                self.connection.rollback()
            if isinstance(error, sqlite3.Error):
                raise StateError(f"state store {self.location}: {error}") from error
            raise

    def migrate(self, component: str, migrations: Sequence[str]) -> None:
        """Apply the not yet applied migrations of one component, each in a transaction.

        Every migrating transaction first takes the dialect's migration lock
        (`_lock_migrations`), so processes starting together never apply the same DDL
        twice.
        """
        if component in self._migrated:
            return
        if self._applied_versions(component) >= set(range(1, len(migrations) + 1)):
            # Up to date: the common case on every run, answered without a write lock.
            self._migrated.add(component)
            return
        with self._unfenced(), self.transaction():
            self._lock_migrations()
            self.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " component TEXT NOT NULL, version INTEGER NOT NULL,"
                " PRIMARY KEY (component, version))"
            )
        for version, script in enumerate(migrations, start=1):
            # Checked inside the write transaction: another process may have applied
            # it a moment ago.
            with self._unfenced(), self.transaction():
                self._lock_migrations()
                if self.query_one(
                    "SELECT 1 FROM schema_migrations WHERE component = ? AND version = ?",
                    (component, version),
                ):
                    continue
                from durability.state.sqltext import split_statements

                for statement in split_statements(self.ddl(script)):
                    self.execute(statement)
                self.execute(
                    "INSERT INTO schema_migrations (component, version) VALUES (?, ?)",
                    (component, version),
                )
        self._migrated.add(component)

    def _lock_migrations(self) -> None:
        """Serialize migrations across processes (SQLite: BEGIN IMMEDIATE already does)."""

    @contextlib.contextmanager
    def _unfenced(self) -> Iterator[None]:
        # A schema migration changes no record a fence protects, and must not wait for
        # the lease table's own migration.
        fence, self.fence = self.fence, None
        try:
            yield
        finally:
            self.fence = fence


    def is_current(self, component: str, migrations: Sequence[str]) -> bool:
        """Return True if every migration of a component is applied (reads only).

        Readers that must not write (a page served on GET) ask this first: before a
        feature's first run its tables do not exist, and there is nothing to show.
        """
        if component in self._migrated:
            return True
        return self._applied_versions(component) >= set(range(1, len(migrations) + 1))

    def _applied_versions(self, component: str) -> set[int]:
        """Return the applied migration versions of a component (empty before any)."""
        if self.dialect == "postgresql":
            exists = self.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL")
        else:
            exists = self.query_one(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            )
        if not exists or not exists[0]:
            return set()
        rows = self.query("SELECT version FROM schema_migrations WHERE component = ?", (component,))
        return {int(row[0]) for row in rows}

    def close(self) -> None:
        """Close the connection."""
        with contextlib.suppress(Exception):
            self.connection.close()

    # -- results history -------------------------------------------------------------------
    def record_report(self, report: Report, run_id: str | None = None) -> str:
        """Record every result of a report in one transaction; return the run id."""
        self.migrate("core", _CORE_MIGRATIONS)
        run = run_id or os.urandom(16).hex()
        when = isoformat_z(report.checked_at)
        rows = [
            (
                run,
                r.check,
                r.target,
                r.status.name,
                r.summary,
                when,
                json.dumps(r.data, sort_keys=True, default=str),
            )
            for r in report.results
        ]
        with self.transaction():
            self.executemany(
                "INSERT INTO results (run_id, check_name, target, status, summary,"
                " checked_at, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return run

    def has_history(self) -> bool:
        """Return True if the results history exists (some check was recorded); reads only."""
        return self.is_current("core", _CORE_MIGRATIONS)

    def history(
        self,
        check: str | None = None,
        since: datetime | None = None,
        target: str | None = None,
        limit: int = 1000,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Return recorded results, newest first, as plain dicts."""
        self.migrate("core", _CORE_MIGRATIONS)
        clauses, params = [], []
        if check:
            clauses.append("check_name = ?")
            params.append(check)
        if target:
            clauses.append("target = ?")
            params.append(target)
        if since:
            clauses.append("checked_at >= ?")
            params.append(isoformat_z(since))
        if until:
            clauses.append("checked_at <= ?")
            params.append(isoformat_z(until))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.query(
            "SELECT check_name, target, status, summary, checked_at, data FROM results "
            f"{where} ORDER BY checked_at DESC, id DESC LIMIT {int(limit)}",
            params,
        )
        return [
            {
                "check": r[0],
                "target": r[1],
                "status": r[2],
                "summary": r[3],
                "checked_at": r[4],
                "data": json.loads(r[5]),
            }
            for r in rows
        ]

    def prune_history(self, before: datetime, batch: int = 10000) -> int:
        """Delete recorded results checked before `before`; return how many went.

        Deletes in batches, each its own short transaction, so a service pruning a
        large history never holds the write lock for long.
        """
        self.migrate("core", _CORE_MIGRATIONS)
        cutoff = isoformat_z(before)
        total = 0
        while True:
            with self.transaction():
                cursor = self.execute(
                    "DELETE FROM results WHERE id IN (SELECT id FROM results"
                    f" WHERE checked_at < ? ORDER BY id LIMIT {int(batch)})",
                    (cutoff,),
                )
                count = max(int(cursor.rowcount), 0)
            total += count
            if count < batch:
                return total


def open_sqlite(path: str, timeout: float = 10.0) -> Store:
    """Open (creating folders and file as needed) a SQLite store.

    `timeout` is how long a write waits for another process's lock before failing.
    Raise StateError with the path and reason if it cannot be opened.
    """
    try:
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, mode=0o700, exist_ok=True)
        # Created owner-only (SQLite gives its -wal and -shm files the same mode).
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        connection = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        connection.isolation_level = None
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
    except (OSError, sqlite3.Error) as error:
        raise StateError(f"cannot open state store {path}: {error}") from error
    return _SqliteStore(connection, "sqlite", path)


class _SqliteStore(Store):
    """SQLite in autocommit mode; `transaction()` issues BEGIN IMMEDIATE itself."""

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        connection = self.connection
        try:
            connection.cursor().execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise StateError(f"state store {self.location}: {error}") from error
        try:
            if self.fence is not None:
                self.fence(self)
            yield self
            connection.cursor().execute("COMMIT")
        except BaseException as error:
            with contextlib.suppress(Exception):
                connection.cursor().execute("ROLLBACK")
            if isinstance(error, sqlite3.Error):
                raise StateError(f"state store {self.location}: {error}") from error
            raise


def open_store(path: str | None = None, url: str | None = None) -> Store:
    """Open the configured store: PostgreSQL when `url` is set, else SQLite at `path`."""
    if url:
        from durability.state.postgres import open_postgres

        return open_postgres(url)
    return open_sqlite(path or default_sqlite_path())

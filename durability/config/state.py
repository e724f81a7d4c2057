"""`[state]`: where history, inventory, customers and the outbox live."""

from __future__ import annotations

from durability.config.schema import Settings, setting


def _check_url(value: str) -> str | None:
    if not value.startswith(("postgresql://", "postgres://")):
        return "must be a postgresql:// URL (leave it unset for SQLite at state.path)"
    return None


class StateSettings(Settings):
    """The state store: SQLite at `path` unless `url` names a PostgreSQL database."""

    path: str | None = setting(
        None,
        help="SQLite database file. Default: /var/lib/durability/state.db for root, "
        "else $XDG_STATE_HOME/durability/state.db.",
        example='"/var/lib/durability/state.db"',
    )
    url: str | None = setting(
        None,
        help="PostgreSQL URL instead of SQLite, for a provider whose history and "
        "reminders outgrow one machine. Put no password here: use ~/.pgpass or PGPASSFILE.",
        example='"postgresql://durability@db.internal/durability"',
        check=_check_url,
    )
    retention: float = setting(
        400 * 86400.0,
        kind="duration",
        help="How long per-run history is kept; older rows are pruned.",
    )
    record: bool = setting(
        True,
        help="Record every run. false keeps `durability raid` read-only (no history, so "
        "no stall, scrub-age or inventory checks).",
    )

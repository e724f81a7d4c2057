"""The state store: history, inventory, customers, outbox."""

from durability.state.store import Store, default_sqlite_path, open_sqlite, open_store

__all__ = ["Store", "default_sqlite_path", "open_sqlite", "open_store"]

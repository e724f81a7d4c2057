"""What every command gets: the config (loaded on first use) and the state store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from durability.model import now_utc

if TYPE_CHECKING:
    from durability.config import Config
    from durability.state.store import Store


@dataclass
class Context:
    """Per-invocation context: lazily loaded config and store, and the clock."""

    config_path: str | None = None
    verbosity: int = 0
    command: str = ""
    now: datetime = field(default_factory=now_utc)
    preloaded: Config | None = None
    _store: Store | None = None

    def config(self) -> Config:
        """Return the config, loading it on first use. Raise ConfigError if invalid."""
        if self.preloaded is None:
            from durability.config import load_config

            self.preloaded = load_config(self.config_path)
        return self.preloaded

    def store(self) -> Store:
        """Return the state store, opening (and creating) it on first use.

        Raise StateError if it cannot be opened.
        """
        if self._store is None:
            from durability.state.store import open_store

            state = self.config().state
            self._store = open_store(state.path, state.url)
        return self._store

    def close(self) -> None:
        """Close what was opened."""
        if self._store is not None:
            self._store.close()
            self._store = None

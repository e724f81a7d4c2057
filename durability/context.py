"""What every command gets: the config (loaded on first use) and the state store."""

from __future__ import annotations

from datetime import datetime

from durability.model import now_utc

TYPE_CHECKING = False  # typing costs the cron job more than the check

if TYPE_CHECKING:
    from durability.config import Config
    from durability.state.store import Store


class Context:
    """Per-invocation context: lazily loaded config and store, and the clock."""

    def __init__(
        self,
        config_path: str | None = None,
        verbosity: int = 0,
        command: str = "",
        now: datetime | None = None,
        preloaded: Config | None = None,
        lazy_config: bool = False,
        store: Store | None = None,
    ) -> None:
        self.config_path = config_path
        self.verbosity = verbosity
        self.command = command
        self.now = now or now_utc()
        self.preloaded = preloaded
        self.lazy_config = lazy_config
        self._store = store

    def config(self) -> Config:
        """Return the config, loading it on first use. Raise ConfigError if invalid."""
        if self.preloaded is None:
            from durability.config import load_config

            self.preloaded = load_config(self.config_path, lazy=self.lazy_config)
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

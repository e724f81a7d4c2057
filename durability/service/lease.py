"""Which `durability run` is active: a lease row in the state store, renewed by a heartbeat.

On PostgreSQL several services (one per host) share one database; one of them holds the
lease and runs the jobs, the others stand by and take the lease over once it has
expired. The lease is a row (`service_lease`) with an expiry on the database's own
clock, not a session advisory lock: a host that lost its network keeps an advisory lock
alive on the server until the server notices the dead connection (with default TCP
settings, hours), while a lease simply runs out. It also fences: every write
transaction of a job first reads the lease row `FOR SHARE` and checks that this instance
still holds it, with the same epoch and not expired (`Lease.fence`). Taking the lease
over needs the row `FOR UPDATE`, so it waits for such a transaction to end, and every
later transaction of the old holder is refused: the writes of two instances never
interleave, whatever the network does. A job connection left idle inside a transaction
by a vanished host is ended by the server (`idle_in_transaction_session_timeout`), so
it cannot hold the row for long.

On SQLite the file lock keeps to one service; the lease row is still written, so the
status page and Prometheus show the active instance the same way.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from durability.errors import StateError
from durability.state.store import Store

log = logging.getLogger(__name__)

MIGRATIONS = (
    """
    CREATE TABLE service_lease (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        instance_name TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        epoch INTEGER NOT NULL,
        acquired REAL NOT NULL,
        renewed REAL NOT NULL,
        expires REAL NOT NULL
    );
    """,
)

LEASE_NAME = "run"
_NOW = {
    "postgresql": "CAST(extract(epoch FROM clock_timestamp()) AS DOUBLE PRECISION)",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}


def migrate(store: Store) -> None:
    """Create the lease table if needed."""
    store.migrate("service_lease", MIGRATIONS)


@dataclass(frozen=True)
class ActiveInstance:
    """The service instance holding the lease, as the store records it.

    `expires_in` is in seconds on the database's clock; zero or less means the holder
    stopped renewing (dead, cut off or stopped) and a standby may take over.
    """

    instance_name: str
    host: str
    pid: int
    epoch: int
    acquired: float
    renewed: float
    expires_in: float

    @property
    def alive(self) -> bool:
        """Return True while the lease is held (not expired)."""
        return self.expires_in > 0


def active_instance(store: Store) -> ActiveInstance | None:
    """Given a store, return the instance holding the service lease, or None if none ever did.

    Reads only (nothing is created: a store where no service ever ran gives None); an
    expired lease is returned with `alive` False.
    """
    if not store.is_current("service_lease", MIGRATIONS):
        return None
    row = store.query_one(
        "SELECT instance_name, host, pid, epoch, acquired, renewed, expires - "
        f"{_NOW[store.dialect]} FROM service_lease WHERE name = ? AND holder <> ''",
        (LEASE_NAME,),
    )
    if row is None:
        return None
    return ActiveInstance(str(row[0]), str(row[1]), int(row[2]), int(row[3]),
                          float(row[4]), float(row[5]), float(row[6]))


class LostLease(StateError):
    """This instance no longer holds the service lease; nothing was written."""


class Lease:
    """This instance's side of the lease: acquire, renew, release, and fence job writes.

    It keeps its own connection (`open_store` is called again after a failure). Every
    method that talks to the store raises StateError when it cannot reach it.
    """

    def __init__(self, open_store: Callable[[], Store], instance_name: str, ttl: float,
                 force: bool = False) -> None:
        self._open = open_store
        self.instance_name = instance_name
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.holder = f"{instance_name}:{self.host}:{self.pid}:{os.urandom(4).hex()}"
        self.ttl = ttl
        # SQLite: the file lock already proves any other holder dead.
        self.force = force
        self.epoch = 0
        # Who held the lease when it was last found taken ("NAME on HOST").
        self.other = ""
        # The instance name of the holder before this one took the lease ("" if none).
        self.previous = ""
        self._store: Store | None = None
        self._thread = 0
        self._valid_until = 0.0
        self._mutex = threading.Lock()
        # One user of the lease connection at a time (the lease thread, or a release).
        self._io = threading.Lock()

    # -- the lease connection -----------------------------------------------------------------
    def _connection(self) -> Store:
        if (self._store is not None and self._store.dialect == "sqlite"
                and self._thread != threading.get_ident()):
            # A SQLite connection serves only the thread that opened it (the first try
            # is made on the main thread, the renewals on the lease thread).
            self._drop()
        if self._store is None:
            self._thread = threading.get_ident()
            store = self._open()
            try:
                if store.dialect == "postgresql":
                    # A renewal or takeover never waits long for a job's transaction.
                    timeout = max(1, int(self.ttl * 1000 / 6))
                    store.execute(f"SET lock_timeout = {timeout}")
                migrate(store)
            except StateError:
                store.close()
                raise
            self._store = store
        return self._store

    def _drop(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def _guard(self, action: Callable[[Store], bool]) -> bool:
        with self._io:
            try:
                return action(self._connection())
            except StateError:
                self._drop()
                raise

    # -- holding --------------------------------------------------------------------------------
    def held(self) -> bool:
        """Return True while this instance may act as the active one (local clock)."""
        return self.epoch > 0 and time.monotonic() < self._valid_until

    def try_acquire(self) -> bool:
        """Take the lease if it is free, expired or ours; return True if now held."""
        started = time.monotonic()
        return self._guard(lambda store: self._acquire(store, started))

    def _acquire(self, store: Store, started: float) -> bool:
        now = _NOW[store.dialect]
        lock = " FOR UPDATE" if store.dialect == "postgresql" else ""
        # First a plain read: while another holder's lease runs, a standby takes no row
        # lock, so it never holds up the active one's fenced writes.
        seen = store.query_one(
            f"SELECT holder, expires - {now}, instance_name, host FROM service_lease "
            "WHERE name = ?", (LEASE_NAME,))
        if (seen is not None and str(seen[0]) not in ("", self.holder)
                and float(seen[1]) > 0 and not self.force):
            self.other = f"{seen[2]} on {seen[3]}"
            self.epoch = 0
            return False
        with store.transaction():
            store.execute(
                "INSERT INTO service_lease (name, holder, instance_name, host, pid, epoch, "
                "acquired, renewed, expires) VALUES (?, '', '', '', 0, 0, 0, 0, 0) "
                "ON CONFLICT (name) DO NOTHING", (LEASE_NAME,))
            row = store.query_one(
                f"SELECT holder, epoch, expires - {now}, instance_name, host "
                f"FROM service_lease WHERE name = ?{lock}", (LEASE_NAME,))
            assert row is not None
            holder, epoch, remaining = str(row[0]), int(row[1]), float(row[2])
            previous = str(row[3])
            if holder not in ("", self.holder) and remaining > 0 and not self.force:
                self.other = f"{row[3]} on {row[4]}"
                self.epoch = 0
                return False
            store.execute(
                f"UPDATE service_lease SET holder = ?, instance_name = ?, host = ?, pid = ?, "
                f"epoch = ?, acquired = {now}, renewed = {now}, expires = {now} + ? "
                "WHERE name = ?",
                (self.holder, self.instance_name, self.host, self.pid, epoch + 1, self.ttl,
                 LEASE_NAME))
        with self._mutex:
            self.epoch = epoch + 1
            self._valid_until = started + self.ttl * 0.9
            self.previous = previous
        return True

    def renew(self) -> bool:
        """Extend the lease; return False if it was lost (taken over or expired)."""
        started = time.monotonic()
        return self._guard(lambda store: self._renew(store, started))

    def _renew(self, store: Store, started: float) -> bool:
        now = _NOW[store.dialect]
        with store.transaction():
            cursor = store.execute(
                f"UPDATE service_lease SET renewed = {now}, expires = {now} + ? "
                f"WHERE name = ? AND holder = ? AND epoch = ? AND expires > {now}",
                (self.ttl, LEASE_NAME, self.holder, self.epoch))
            renewed = int(cursor.rowcount) == 1
        with self._mutex:
            if renewed:
                self._valid_until = started + self.ttl * 0.9
            else:
                self.epoch = 0
        return renewed

    def lose(self) -> None:
        """Stop acting as the active instance at once (the lease could not be renewed)."""
        with self._mutex:
            self.epoch = 0

    def release(self, wait: float = 0.2) -> None:
        """Give the lease up (a standby may take it at once). Errors are ignored.

        Waits at most `wait` seconds for the lease connection; if it is busy the lease
        is left to expire by itself.
        """
        with self._mutex:
            epoch, self.epoch = self.epoch, 0
        if not self._io.acquire(timeout=wait):
            log.info("lease not released (it expires by itself): its connection is busy")
            return
        try:
            if epoch and self._store is not None:
                store = self._connection()
                with store.transaction():
                    store.execute(
                        "UPDATE service_lease SET expires = 0 WHERE name = ? AND holder = ? "
                        "AND epoch = ?", (LEASE_NAME, self.holder, epoch))
        except StateError as error:
            log.info("lease not released (it expires by itself): %s", error)
        finally:
            self._drop()
            self._io.release()

    # -- fencing --------------------------------------------------------------------------------
    def guard_store(self, store: Store) -> None:
        """Make every write transaction of `store` (a job's) check the lease first.

        The store is bound to the lease's current epoch: if this instance loses the
        lease and later takes it again, a job begun before still has every write
        refused (another instance may have settled its work in between).
        """
        if store.dialect == "postgresql":
            # A vanished host's half-done transaction must not pin the lease row.
            timeout = max(1000, int(self.ttl * 1000 / 2))
            store.execute(f"SET idle_in_transaction_session_timeout = {timeout}")
        epoch = self.epoch
        store.fence = lambda guarded: self.fence(guarded, epoch)
        store.fence_token = f"{self.holder}#{epoch}"

    def fence(self, store: Store, epoch: int) -> None:
        """Inside a write transaction: raise LostLease unless this instance holds the lease
        in `epoch`.

        On PostgreSQL the lease row stays share-locked until the transaction ends, so
        no other instance can take the lease over while this write is in progress.
        """
        if not epoch or self.epoch != epoch or not self.held():
            raise LostLease(f"state store {store.location}: this instance is no longer the "
                            "active service; nothing written")
        if store.dialect != "postgresql":
            return
        row = store.query_one(
            f"SELECT 1 FROM service_lease WHERE name = ? AND holder = ? AND epoch = ? "
            f"AND expires > {_NOW[store.dialect]} FOR SHARE",
            (LEASE_NAME, self.holder, epoch))
        if row is None:
            self.lose()
            raise LostLease(f"state store {store.location}: the service lease was taken "
                            "over or expired; nothing written")


class Leadership:
    """Keeps the lease on a thread: renews it while held, tries to take it while not.

    A store it cannot reach is retried with a growing delay (1 s, doubling, up to the
    renewal interval) and said once per outage, not at every attempt. While the
    store is unreachable the lease is kept only until it would have expired.
    """

    def __init__(self, lease: Lease, renew_every: float) -> None:
        self.lease = lease
        self.renew_every = renew_every
        self.changed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._problem: str | None = None
        self._failures = 0
        # The holder last reported while standing by (said once, not at every try).
        self._said = ""

    def is_leader(self) -> bool:
        """Return True while this instance is the active one."""
        return self.lease.held()

    def announce_start(self) -> None:
        """Say whether this instance starts active or standing by (after a first try)."""
        self._announce(False)

    def start(self) -> None:
        """Keep the lease on a thread (call `step()` once before, to be active at once)."""
        self._thread = threading.Thread(target=self._run, name="durability-lease",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the thread and give the lease up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(0.2)
        self.lease.release()

    def _run(self) -> None:
        delay = self.renew_every
        while not self._stop.wait(delay):
            delay = self.step()

    def step(self) -> float:
        """Renew or try to take the lease once; return how long to wait before the next try."""
        lease = self.lease
        was = lease.held()
        try:
            if lease.epoch:
                if not lease.renew():
                    log.warning("lost the service lease (taken over or expired): no job "
                                "runs here until it is taken again")
            else:
                lease.try_acquire()
        except StateError as error:
            if self._problem is None:
                log.error("service lease: %s; retrying with backoff", error)
            self._problem = str(error)
            self._failures += 1
            self._announce(was)
            return float(min(self.renew_every, 2 ** (self._failures - 1)))
        if self._problem is not None:
            log.warning("service lease: the state store answers again")
            self._problem = None
        self._failures = 0
        self._announce(was)
        return self.renew_every

    def _announce(self, was: bool) -> None:
        now = self.lease.held()
        if now and not was:
            log.warning("active: this instance (%s) holds the service lease (epoch %d) and "
                        "runs the jobs", self.lease.instance_name, self.lease.epoch)
        elif was and not now:
            log.warning("standing by: the service lease is no longer held here")
        elif not now and self.lease.other and self.lease.other != self._said:
            log.warning("standing by: %s is active; taking over if its lease expires",
                        self.lease.other)
        self._said = "" if now else self.lease.other
        if now != was:
            self.changed.set()

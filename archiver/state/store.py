"""The state store: the single source of truth of a run.

Every listed attempt, its decision and final state, every batch (composition,
idempotency key, status, API response), the sink outbox and the campaigns we
paused live here. Writes go through short transactions under one lock, so the
store can be shared by the run's worker threads.

``Store`` opens the database and holds the locks between runs; what it keeps is read
and written through its repositories, one per concern, all on the same connection:
``store.attempts`` (:mod:`archiver.state.attempts`), ``store.batches``
(:mod:`archiver.state.batches`), ``store.events`` (the outbox,
:mod:`archiver.state.events`), ``store.runs`` (:mod:`archiver.state.runs`) and
``store.campaigns`` (:mod:`archiver.state.campaigns`). ``store.prune`` removes the
finished history no run needs again (:mod:`archiver.state.prune`).

One set of queries, two databases: SQLite in the state folder (the default,
:mod:`archiver.state.sqlite`) and PostgreSQL, shared by runs on many machines
(:mod:`archiver.state.postgres`). The SQL is written once, in the subset both
understand (``?`` placeholders, ``ON CONFLICT``, no rowid), and translated for
PostgreSQL by :mod:`archiver.state.dialect`. Runs sharing a PostgreSQL store lock
the campaigns and sinks they work on (:mod:`archiver.state.locks`).

Every time the store writes comes from its ``clock`` (the real one by default).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from typing import Any

from archiver.clock import Clock, utc_now
from archiver.errors import StateError, StateLockedError, StorageError
from archiver.state import sqlite
from archiver.state.attempts import Attempts
from archiver.state.backend import Backend, Db
from archiver.state.batches import Batches
from archiver.state.campaigns import Campaigns
from archiver.state.conn import Connection
from archiver.state.events import Events
from archiver.state.location import PostgresUrl, StateLocation
from archiver.state.locks import lock_key
from archiver.state.prune import Pruned, prune
from archiver.state.runs import Runs

DB_NAME = sqlite.DB_NAME
# How long a run's last delivery waits for another run delivering the same sink.
DELIVERY_WAIT_SECONDS = 10.0


class Store:
    """The state store at ``location``: a state folder (SQLite, created when missing) or
    a ``postgresql://`` URL (its tables created when missing). ``clock`` gives the times
    it writes (an aware datetime)."""

    def __init__(
        self,
        location: StateLocation,
        *,
        create: bool = True,
        clock: Clock = utc_now,
        read_only: bool = False,
    ) -> None:
        self.location = location
        backend: Backend
        if isinstance(location, PostgresUrl):
            # Imported here: psycopg is loaded only by runs that use PostgreSQL.
            from archiver.state.postgres import PostgresBackend

            backend = PostgresBackend(location, create=create, read_only=read_only)
        else:
            backend = sqlite.SqliteBackend(location, read_only=read_only)
        self.where = backend.where
        self._conn = Connection(backend, clock)
        self.attempts = Attempts(self._conn)
        self.batches = Batches(self._conn)
        self.events = Events(self._conn)
        self.runs = Runs(self._conn, location)
        self.campaigns = Campaigns(self._conn)

    @classmethod
    def open_existing(
        cls, location: StateLocation, *, clock: Clock = utc_now, read_only: bool = False
    ) -> Store:
        """The store runs left at ``location``; StateError when there is none (where
        ``Store()`` would create an empty one, a mistyped path should say so).
        ``read_only``: for commands that only read; a state folder is then neither
        created, tightened, migrated nor written, a PostgreSQL store neither created nor
        migrated (a role that may only read it can)."""
        if isinstance(location, PostgresUrl):
            return cls(location, create=False, clock=clock, read_only=read_only)
        if not sqlite.exists(location):
            raise StateError(
                f"no state store in {location} (no run has used it; pass --state DIR or --policy FILE)"
            )
        return cls(location, clock=clock, read_only=read_only)

    @property
    def shared(self) -> bool:
        """Runs on other machines may use this store at once (PostgreSQL)."""
        return self._conn.backend.shared

    # -- plumbing -------------------------------------------------------------
    def close(self) -> None:
        """Closing a PostgreSQL store ends its session, and every lock the run held."""
        self._conn.close()

    def tx(self) -> AbstractContextManager[Db]:
        """A write transaction on the store's connection (what every repository uses)."""
        return self._conn.tx()

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One statement outside a transaction."""
        return self._conn.query(sql, args)

    @property
    def schema_version(self) -> int:
        return self._conn.schema_version()

    def prune(self, older_than: timedelta, *, dry_run: bool = False) -> Pruned:
        """Remove the history finished more than ``older_than`` ago that no run needs
        again (see :mod:`archiver.state.prune`); ``dry_run`` only counts it."""
        return prune(self._conn, older_than, dry_run=dry_run)

    # -- locks between runs sharing the store ------------------------------------
    # A state folder is held whole by its run (run.lock): every lock here is granted.
    # A PostgreSQL store's runs hold session advisory locks that die with them.
    def try_lock_campaign(self, campaign_id: str) -> bool:
        """Take the campaign (of the store's target) for this run until
        :meth:`unlock_campaign` or the end of the run; False when another run, on this
        machine or another, holds it."""
        return self._conn.try_lock_campaign(campaign_id)

    def unlock_campaign(self, campaign_id: str) -> None:
        self._conn.locks.unlock(self._conn.campaign_key(campaign_id))

    def check_held(self, campaign_id: str) -> None:
        """StorageError unless this run still holds the campaign: in a store runs share,
        its lock lives in the store's session, and a session lost (the server restarted,
        the connection cut) has let it go, so another run may be at work on it. Asked
        right before each archive call; a state folder's run holds its whole folder."""
        if not self._conn.locks.holds(self._conn.campaign_key(campaign_id)):
            raise StorageError(
                f"the state store {self.where}: this run no longer holds campaign "
                f"{campaign_id}; run again (the next run picks up where this one stopped)"
            )

    def check_session(self) -> None:
        """StorageError when the session of a store runs share is gone, and with it every
        lock the run held (a state folder's has nothing to lose)."""
        if self.shared:
            self._conn.query("SELECT 1")

    def campaign_holder(self, campaign_id: str) -> str | None:
        """Who holds the campaign, as the report says it: ``held by archiver run ID (pid N
        at HOST)``; None when no one holds it now (let go since it was asked for)."""
        who = self._conn.locks.holder(self._conn.campaign_key(campaign_id))
        return f"held by {who}" if who else None

    def own_sinks(self, sinks: Iterable[str]) -> None:
        """This run delivers ``sinks`` (outbox names) while it lives: runs sharing the
        store do not count their undelivered events as orphaned meanwhile, nor drop them
        (``dropping``). A sink being dropped, or looked at by ``runs outbox``, this very
        moment is waited for (a statement's time); StateLockedError after a while."""
        for sink in sinks:
            if not self._take(lock_key("sink-owner", sink), DELIVERY_WAIT_SECONDS, shared=True):
                raise StateLockedError(
                    f"sink {sink} stayed taken by `archiver runs outbox` for "
                    f"{DELIVERY_WAIT_SECONDS:g} s; run again once it has ended"
                )

    def _take(self, key: int, seconds: float, *, shared: bool = False) -> bool:
        """Take lock ``key``, trying again for up to ``seconds``: whether it was taken."""
        locks = self._conn.locks
        deadline = time.monotonic() + seconds
        while not locks.try_lock(key, shared=shared):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def sink_user(self, sink: str) -> str | None:
        """Which other live run delivers ``sink`` (``own_sinks``), as ``campaign_holder``
        names it; None when none does (always, for a state folder: its run holds it)."""
        return self._conn.locks.holder(lock_key("sink-owner", sink))

    @contextmanager
    def dropping(self, sink: str) -> Iterator[str | None]:
        """Hold ``sink`` against every run for as long as its events are given up:
        yields None when no live run delivers it (one starting meanwhile waits, in
        ``own_sinks``), else the run that does, as ``sink_user`` names it."""
        locks = self._conn.locks
        key = lock_key("sink-owner", sink)
        if not locks.try_lock(key):
            yield self.sink_user(sink) or "another run"
            return
        try:
            yield None
        finally:
            locks.unlock(key)

    @contextmanager
    def delivering(self, sink: str, *, wait: bool = True) -> Iterator[bool]:
        """Deliver ``sink`` alone: yields False when another run is delivering it (it
        delivers every pending event, ours included, until none is left). ``wait`` waits
        a little for it to finish first."""
        key = lock_key("sink-delivery", sink)
        got = self._take(key, DELIVERY_WAIT_SECONDS if wait else 0.0)
        try:
            yield got
        finally:
            if got:
                self._conn.locks.unlock(key)

"""What every part of the state store works through: one database connection (one
``Backend``) under one lock, the clock the store writes times from, and the locks
between runs sharing the store. The store's repositories (attempts, batches, outbox
events, runs, campaigns) share one ``Connection``, so a write that spans them (a batch's
outcome and its sink events) is one transaction."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from archiver.clock import Clock, stamp
from archiver.errors import StateError
from archiver.state.backend import Backend, Db
from archiver.state.locks import FolderLocks, Locks, SessionLocks, lock_key

T = TypeVar("T")


def damaged(where: str, what: str, remedy: str = "move it aside") -> StateError:
    """A value in the store at ``where`` that archiver did not write so (the file damaged,
    a row edited by hand): one line naming the store, the value and what to do (restore
    the store from a backup, or ``remedy``)."""
    return StateError(
        f"the state store {where} is damaged: {what}; restore it from a backup or {remedy}"
    )


def wrong_type(value: Any, kinds: type | tuple[type, ...]) -> str | None:
    """How a value read back is not of ``kinds`` ("not text", "not a number"), else None.
    SQLite keeps what was written whatever the column says (a blob in a TEXT column, say);
    a bool is no number."""
    if isinstance(value, kinds) and not isinstance(value, bool):
        return None
    return "not a number" if int in (kinds if isinstance(kinds, tuple) else (kinds,)) else "not text"
# Ids in one IN (...) list: well under SQLite's and PostgreSQL's limits on parameters.
IN_CHUNK = 500


class Connection:
    def __init__(self, backend: Backend, clock: Clock) -> None:
        self.backend = backend
        self.clock = clock
        self._lock = threading.RLock()
        self.locks: Locks = SessionLocks(self.query) if backend.shared else FolderLocks()
        self.target = ""  # the target campaign locks are for (set when a run starts)

    def now(self) -> str:
        """The clock's time, as the store writes it."""
        return stamp(self.clock())

    @contextmanager
    def tx(self) -> Iterator[Db]:
        with self._lock:
            try:
                with self.backend.transaction() as db:
                    yield db
            except self.backend.errors as err:
                raise self.backend.fault(err) from err

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self.backend.query(sql, args)
            except self.backend.errors as err:
                raise self.backend.fault(err) from err

    def schema_version(self) -> int:
        with self._lock:
            try:
                return self.backend.schema_version()
            except self.backend.errors as err:
                raise self.backend.fault(err) from err

    def close(self) -> None:
        with self._lock:
            self.backend.close()

    def damaged(self, what: str, remedy: str = "move it aside") -> StateError:
        """:func:`damaged`, naming this store."""
        return damaged(self.backend.where, what, remedy)

    def campaign_key(self, campaign_id: str) -> int:
        return lock_key("campaign", self.target, campaign_id)

    def try_lock_campaign(self, campaign_id: str) -> bool:
        return self.locks.try_lock(self.campaign_key(campaign_id))


def in_lists(ids: Sequence[T]) -> Iterator[tuple[str, list[T]]]:
    """``(?, ?, ...)`` placeholders and their ids, for ``IN`` lists of bounded length."""
    for start in range(0, len(ids), IN_CHUNK):
        part = list(ids[start:start + IN_CHUNK])
        yield ", ".join("?" * len(part)), part

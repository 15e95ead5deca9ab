"""What the state store needs from a database: SQLite (:mod:`archiver.state.sqlite`) or
PostgreSQL (:mod:`archiver.state.postgres`). The store's queries are written once; a
backend runs them (translating where it must) and says what its errors mean."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from archiver.errors import ArchiverError


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Db(Protocol):
    """What ``Store.tx()`` yields: SQLite's ``execute`` and ``executemany``, ``?`` placeholders."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...


class Backend(Protocol):
    @property
    def where(self) -> str:
        """The folder or URL (without password) as messages name it."""

    @property
    def shared(self) -> bool:
        """Runs on other machines may use the store at the same time (they lock what
        they work on); a state folder is held whole by one run."""

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        """The driver's errors, mapped by :meth:`fault`."""

    def query(self, sql: str, args: Sequence[Any] = ...) -> list[tuple[Any, ...]]:
        """One statement outside a transaction (what it reads is committed)."""

    def transaction(self) -> AbstractContextManager[Db]:
        """A write transaction: one writer at a time, committed on leaving, rolled back
        on any exception."""

    def fault(self, err: BaseException) -> ArchiverError:
        """A driver error as the user reads it: one line naming the store, what to do."""

    def schema_version(self) -> int: ...

    def label(self, text: str) -> None:
        """Name this connection for others to see (who holds a lock)."""

    def close(self) -> None: ...

"""The state store's PostgreSQL connection: one ledger shared by runs on many machines.

The store's SQL is written once (for SQLite) and translated by :mod:`archiver.state.dialect`.
Migrations are the same list as SQLite's, translated the same way, recorded in a
one-row ``schema_version`` table (SQLite keeps ``PRAGMA user_version``) and applied in
one transaction under an advisory lock, so runs starting together migrate once.

Writes keep SQLite's semantics: a write transaction takes a transaction-level advisory
lock on the store first (as ``BEGIN IMMEDIATE`` takes SQLite's write lock), so
transactions that read before they write (the running totals, a batch formed again,
the outbox's order) never interleave, whichever machine they come from. They are short;
runs on different campaigns still proceed side by side.

One connection per store, in autocommit mode outside transactions; it also holds the
run's session locks (:mod:`archiver.state.locks`). A lost connection is not
re-established: its locks are gone with it, so the run stops at its next statement
(exit 74) and the next run picks up where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.adapt import Buffer, Dumper
from psycopg.types.numeric import NumericLoader
from psycopg.types.string import StrDumperUnknown

from archiver.errors import ArchiverError, ConfigError, StateError, StorageError
from archiver.state import dialect
from archiver.state.location import PostgresUrl
from archiver.state.locks import lock_key
from archiver.state.schema import MIGRATIONS, unreadable_version

log = logging.getLogger(__name__)

WRITE_LOCK = lock_key("store-write")
MIGRATE_LOCK = lock_key("store-migrate")
CONNECT_TIMEOUT_SECONDS = 10
# The server notices a vanished client (and drops its locks) after about a minute.
_SESSION = (
    "SET tcp_keepalives_idle = 30",
    "SET tcp_keepalives_interval = 10",
    "SET tcp_keepalives_count = 3",
    "SET idle_in_transaction_session_timeout = '10min'",
)
_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),"
    " version BIGINT NOT NULL)"
)
# SQLSTATE classes and codes that mean the database cannot be written or reached.
_STORAGE = {"53100": "the server's disk is full", "53200": "the server is out of memory",
            "53300": "the server has too many connections", "25006": "the database is read-only"}
_CONFIG = {"28000", "28P01", "3D000", "3F000"}  # refused login, no such database or schema


class _BoolAsInteger(Dumper):
    """True and False are stored as 1 and 0, as SQLite stores them."""

    oid = psycopg.adapters.types["int8"].oid

    def dump(self, obj: Any) -> Buffer:
        return b"1" if obj else b"0"


class _Text(StrDumperUnknown):
    """PostgreSQL's text cannot hold NUL; server text that carries one (an error
    message, a hostile attempt id) is kept with U+FFFD in its place, not refused."""

    def dump(self, obj: str) -> Buffer | None:
        return super().dump(obj.replace("\x00", "\ufffd") if "\x00" in obj else obj)


class _WholeNumeric(NumericLoader):
    """``sum()`` of a BIGINT column is NUMERIC: integral values come back as ``int``, as
    from SQLite."""

    def load(self, data: Buffer) -> Any:
        value: Decimal = super().load(data)
        return int(value) if value == value.to_integral_value() else float(value)


class Transaction:
    """What ``Store.tx()`` yields for PostgreSQL: SQLite's calls, translated."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        t = dialect.query(sql)
        return self._conn.execute(t.sql, _ordered(t, args))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> psycopg.Cursor[Any]:
        t = dialect.query(sql)
        cursor = self._conn.cursor()
        cursor.executemany(t.sql, [_ordered(t, row) for row in rows])
        return cursor


def _ordered(t: dialect.Translated, args: Sequence[Any]) -> Sequence[Any]:
    return args if t.order is None else [args[i] for i in t.order]


def _connect(url: PostgresUrl) -> psycopg.Connection[Any]:
    try:
        conn = psycopg.connect(
            url.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name="archiver",
        )
    except psycopg.Error as err:
        raise fault(str(url), err) from err
    conn.adapters.register_dumper(bool, _BoolAsInteger)
    conn.adapters.register_dumper(str, _Text)
    conn.adapters.register_loader("numeric", _WholeNumeric)
    try:
        for statement in _SESSION:
            conn.execute(statement)
    except psycopg.Error as err:
        conn.close()
        raise fault(str(url), err) from err
    return conn


def store_exists(url: PostgresUrl) -> bool:
    conn = _connect(url)
    try:
        return _has_store(conn)
    except psycopg.Error as err:
        raise fault(str(url), err) from err
    finally:
        conn.close()


def _has_store(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    return bool(row and row[0])


class PostgresBackend:
    errors = (psycopg.Error,)

    def __init__(self, url: PostgresUrl, *, create: bool = True, read_only: bool = False) -> None:
        """``read_only``: for commands that only read (``runs``, ``audit verify``,
        ``evidence``): the store is neither created nor migrated, so a role that may only
        read it (an auditor's, a standby server's) does."""
        self.where = str(url)
        self.shared = True
        self.conn = _connect(url)
        try:
            if (not create or read_only) and not _has_store(self.conn):
                raise StateError(
                    f"no state store in {self.where} (no run has used it; pass --state "
                    "with the database runs use)"
                )
            if read_only:
                self._check_version()
            else:
                self._migrate()
        except BaseException as err:
            self.close()
            if isinstance(err, psycopg.Error):
                raise self.fault(err) from err
            raise

    def close(self) -> None:
        # Closing ends the session: every lock it holds goes with it.
        try:
            self.conn.close()
        except psycopg.Error as err:
            log.warning("closing the state store %s: %s", self.where, err)

    def label(self, text: str) -> None:
        self.conn.execute("SELECT set_config('application_name', %s, false)", (text[:63],))

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        t = dialect.query(sql)
        cursor = self.conn.execute(t.sql, _ordered(t, args))
        return cursor.fetchall() if cursor.description else []

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield Transaction(self.conn)

    def fault(self, err: BaseException) -> ArchiverError:
        return fault(self.where, err)

    def schema_version(self) -> int:
        row = self.conn.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    def _check_version(self) -> None:
        unreadable = unreadable_version(self.where, self.schema_version())
        if unreadable is not None:
            raise StateError(unreadable)

    def _migrate(self) -> None:
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            self.conn.execute(_VERSION_TABLE)
            version = self.schema_version()
            if version > len(MIGRATIONS):
                raise StateError(
                    f"state store {self.where} has schema version {version}, newer than "
                    f"this archiver understands ({len(MIGRATIONS)}); upgrade archiver"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in dialect.ddl(script):
                    self.conn.execute(statement)
                self.conn.execute(
                    "INSERT INTO schema_version (version) VALUES (%s)"
                    " ON CONFLICT (singleton) DO UPDATE SET version = excluded.version",
                    (number,),
                )


def fault(where: str, err: BaseException) -> ArchiverError:
    """What a failed connection or statement means to the user: one line naming the store
    (never its password) and what to do."""
    message = _first_line(err)
    state = getattr(err, "sqlstate", None) or ""
    again = "then run again (the next run picks up where this one stopped)"
    if state in _STORAGE:
        return StorageError(f"the state store {where}: {message}; {_STORAGE[state]}: {again}")
    refused = isinstance(err, psycopg.OperationalError) and (
        "authentication failed" in message or "password" in message
    )
    if state in _CONFIG or refused:
        return ConfigError(f"the state store {where}: {message}")
    if state == "42501":
        return StorageError(
            f"the state store {where}: {message}; give the role the right to create and "
            f"write tables in the database, {again}"
        )
    if isinstance(err, psycopg.OperationalError) or state.startswith("08"):
        return StorageError(
            f"the state store {where}: {message}; check that the server is up and "
            f"reachable, {again}"
        )
    return StateError(f"the state store {where}: {message}")


def _first_line(err: BaseException) -> str:
    diag = getattr(err, "diag", None)
    primary = getattr(diag, "message_primary", None)
    text = primary or str(err) or type(err).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__

"""The state store's SQLite connection: a file in the state folder, in WAL mode.

``synchronous=NORMAL`` in WAL mode makes a commit durable against the death of the
process (the case this tool must survive: kill, OOM, deploy); a power cut can lose the
last commits but never corrupts the file. The folder and its files are owner-only
(:mod:`archiver.state.files`); one run at a time holds the folder (:mod:`archiver.state.lock`).
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from archiver.errors import ArchiverError, StateError, StateLockedError, StorageError
from archiver.state import files
from archiver.state.folder import REFUSED
from archiver.state.schema import MIGRATIONS, unreadable_version

log = logging.getLogger(__name__)

DB_NAME = "state.db"
# What SQLite keeps beside the database: checked like it, as a link there would be
# followed by SQLite (a -journal is even truncated and rewritten).
_SIDE_FILES = ("-wal", "-shm", "-journal")
_NOT_WRITABLE = {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM}
# How long a statement waits for another process's write transaction to end.
BUSY_TIMEOUT_SECONDS = 30.0
_STORAGE_FAULTS = {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, *_NOT_WRITABLE}
# What SQLite says of a table or column the schema should have and the store has not.
_SCHEMA_MISSING = re.compile(r"^(no such (table|column|index)|table \S+ has no column named)\b")
_NOT_UTF8 = re.compile(r"Could not decode to UTF-8 column '([^']*)'")
_SCHEMA_NAMES = "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite%'"


def exists(folder: Path) -> bool:
    return (folder / DB_NAME).is_file()


class SqliteBackend:
    errors = (sqlite3.Error,)

    def __init__(self, folder: Path, *, read_only: bool = False) -> None:
        self.path = folder / DB_NAME
        self.where = str(folder)
        self.shared = False
        self.read_only = read_only
        if read_only:
            self._open_read_only()
            return
        files.private_dir(folder, "the state folder", REFUSED)
        self._check_files()
        if not files.check_private(self.path, "the state store", REFUSED):
            # Created here, 0600, so SQLite's -wal, -shm and -journal files copy its mode.
            fd, _ = files.open_private(
                self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, "the state store", REFUSED
            )
            os.close(fd)
        try:
            with files.private_umask():
                self.db = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False,
                    timeout=BUSY_TIMEOUT_SECONDS,
                )
                try:
                    self.db.execute("PRAGMA journal_mode=WAL")
                    self.db.execute("PRAGMA synchronous=NORMAL")
                    self.db.execute("PRAGMA foreign_keys=ON")
                    self._migrate()
                    self._check_files()
                except BaseException:
                    self.close()
                    raise
        except sqlite3.Error as err:
            raise self.fault(err) from err

    def _open_read_only(self) -> None:
        """For commands that only read (``runs``, ``audit verify``): nothing is created,
        tightened, migrated or written, so a store on a read-only mount or backup can be
        read. SQLite reads a WAL store through its ``-shm`` file, which it creates when
        missing; in a folder it cannot write, a store without a ``-wal`` file (every
        run's last close folds it in) is read as immutable instead."""
        files.check_dir(self.path.parent, "the state folder", REFUSED)
        self._check_files(tighten=False)
        wal = Path(f"{self.path}-wal")
        immutable = not os.access(self.path.parent, os.W_OK) and not wal.exists()
        uri = f"{self.path.absolute().as_uri()}?mode=ro" + ("&immutable=1" if immutable else "")
        try:
            self.db = sqlite3.connect(uri, uri=True, isolation_level=None,
                                      check_same_thread=False, timeout=BUSY_TIMEOUT_SECONDS)
            try:
                version = self.schema_version()
                lost = self._version_lost(version)
            except BaseException:
                self.close()
                raise
        except sqlite3.Error as err:
            raise self.fault(err) from err
        if lost is not None:
            self.close()
            raise lost
        unreadable = unreadable_version(self.path, version)
        if unreadable is not None:
            self.close()
            raise StateError(unreadable)

    def close(self) -> None:
        try:
            self.db.close()
        except sqlite3.Error as err:  # after a fault: the error that caused it is reported
            log.warning("closing the state store %s: %s", self.path, err)

    def label(self, text: str) -> None:
        pass

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.execute(sql, args).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE: the write lock is taken at BEGIN, so a transaction that reads
        # before it writes never sees the store change under it.
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        # A failed COMMIT may have rolled back already; a failing ROLLBACK (the disk
        # that broke the transaction) must not hide the error that did.
        with suppress(sqlite3.Error):
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")

    def fault(self, err: BaseException) -> ArchiverError:
        """What a failed statement means to the user, naming the store and what to do."""
        extended = getattr(err, "sqlite_errorcode", None) or 0
        code = extended & 0xFF
        if extended == sqlite3.SQLITE_READONLY_ROLLBACK:
            # A -journal left by a writer that stopped mid-transaction (not archiver: it
            # writes in WAL mode): SQLite must roll it back before anything is read.
            return StorageError(
                f"cannot read the state store {self.path}: {self.path}-journal holds a "
                "transaction a writer did not finish, which a command that only reads cannot "
                f"roll back; open it for writing once (`sqlite3 {self.path} 'PRAGMA "
                "user_version'` as its owner, or any archiver run on it), then read it again"
            )
        if code in _STORAGE_FAULTS and self.read_only:
            return StorageError(
                f"cannot read the state store {self.path}: {err}; make it and its folder "
                "readable by this user (a folder it cannot write holding a -wal file: "
                "copy the folder somewhere writable and read the copy)"
            )
        if code in _STORAGE_FAULTS:
            hint = (
                f"make {self.path.parent} and its files writable by this user"
                if code in _NOT_WRITABLE
                else f"free space on the disk holding {self.path.parent} and check it"
            )
            return StorageError(
                f"the state store {self.path}: {err}; {hint}, then run again "
                "(the next run picks up where this one stopped)"
            )
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            # Not another run (that one holds run.lock): a program with the file open.
            return StateLockedError(
                f"another process holds the state store {self.path} in a write transaction "
                f"({err}, after waiting {BUSY_TIMEOUT_SECONDS:g} s); close what has it open "
                "(a sqlite3 shell, a database browser), then run again (the next run picks "
                "up where this one stopped)"
            )
        if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            return StateError(
                f"the state store {self.path} is unusable: {err}; "
                "restore it from a backup or move it aside"
            )
        undecodable = _NOT_UTF8.match(str(err))
        if undecodable is not None:
            # Python's sqlite3 quotes the whole value: name only its column.
            return StateError(
                f"the state store {self.path} is unusable: a value in its column "
                f"{undecodable[1]!r} is not UTF-8 text; restore it from a backup or move it aside"
            )
        if code == sqlite3.SQLITE_ERROR and _SCHEMA_MISSING.search(str(err)):
            return StateError(
                f"the state store {self.path} lacks part of its schema ({err}); "
                "restore it from a backup or move it aside"
            )
        return StateError(f"the state store {self.path}: {err}")

    def _check_files(self, *, tighten: bool = True) -> None:
        """The database and the files SQLite keeps beside it are ours, regular, 0600."""
        for suffix in ("", *_SIDE_FILES):
            files.check_private(
                Path(f"{self.path}{suffix}"), "the state store file", REFUSED, tighten=tighten
            )

    def _migrate(self) -> None:
        version = self.schema_version()
        if version > len(MIGRATIONS):
            raise StateError(
                f"state store {self.path} has schema version {version}, newer than this "
                f"archiver understands ({len(MIGRATIONS)}); upgrade archiver"
            )
        lost = self._version_lost(version)
        if lost is not None:
            raise lost
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            try:
                self.db.executescript(
                    f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
                )
            except BaseException as err:
                self._rollback()
                if isinstance(err, sqlite3.Error) and err.sqlite_errorcode == sqlite3.SQLITE_ERROR:
                    # Its tables are not those of the version it says (set by hand?).
                    raise StateError(
                        f"the state store {self.path} says schema version {version} but cannot "
                        f"be upgraded to {number} ({err}): its tables are not those of version "
                        f"{version}; restore it from a backup or move it aside"
                    ) from err
                raise

    def _version_lost(self, version: int) -> StateError | None:
        """A store of archiver's tables at schema version 0: rebuilt without its version
        (sqlite3's .dump and .recover leave PRAGMA user_version out). Upgrading it would
        fail on its first table; reading it would read nothing a run can trust."""
        if version != 0:
            return None
        found = set(self.db.execute(_SCHEMA_NAMES).fetchall())
        if not found:
            return None
        reference = sqlite3.connect(":memory:")
        try:
            reference.executescript("\n".join(MIGRATIONS))
            latest = set(reference.execute(_SCHEMA_NAMES).fetchall())
        finally:
            reference.close()
        fix = (
            f"its tables are those of version {len(MIGRATIONS)}: if it is complete, "
            f"`sqlite3 {self.path} 'PRAGMA user_version = {len(MIGRATIONS)}'` gives it back"
            if found == latest else "restore it from a backup (sqlite3 .backup keeps it)"
        )
        return StateError(
            f"the state store {self.path} holds tables but no schema version "
            f"(PRAGMA user_version 0: sqlite3's .dump and .recover leave it out); {fix}, "
            "or move it aside"
        )

    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

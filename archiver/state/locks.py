"""Locks between runs that share one state store.

A SQLite store has one run at a time: the run holds an ``flock`` on the whole state
folder (:mod:`archiver.state.lock`), so within it every lock asked for here is granted
(:class:`FolderLocks`).

A PostgreSQL store is shared by runs on many machines, so runs lock what they work on:
a campaign of a target, a sink they deliver, their own run id (so that others can tell
a live run from a dead one). These are PostgreSQL *session* advisory locks
(:class:`SessionLocks`): they belong to the store's connection and die with it, when
the process dies (even by SIGKILL, the server sees the socket close) or the machine
vanishes (TCP keepalives, about a minute). Nothing is written to release them, so a
crashed run never leaves a lock behind. Keys are stable 64-bit hashes (:func:`lock_key`)
of what is locked, the same in every process and on every machine.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


def lock_key(kind: str, *parts: str) -> int:
    """A signed 64-bit key (PostgreSQL's ``bigint``) for ``kind`` and ``parts``."""
    text = "\x1f".join(("archiver", kind, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


class Locks(Protocol):
    def try_lock(self, key: int, *, shared: bool = False) -> bool:
        """Take ``key`` now or say False; a lock this store already holds is taken again
        (and must be released as often)."""

    def unlock(self, key: int, *, shared: bool = False) -> None: ...

    def is_free(self, key: int) -> bool:
        """No other session holds ``key`` in any mode (a test: nothing stays held)."""

    def holder(self, key: int) -> str | None:
        """Who else holds ``key``, as a person should read it, when that can be told."""

    def holds(self, key: int) -> bool:
        """This store still holds ``key`` (asked of the server: a lost session lost it)."""


class FolderLocks:
    """A SQLite store's: the run already holds the whole folder, so every lock is granted."""

    def try_lock(self, key: int, *, shared: bool = False) -> bool:
        return True

    def unlock(self, key: int, *, shared: bool = False) -> None:
        pass

    def is_free(self, key: int) -> bool:
        return True

    def holder(self, key: int) -> str | None:
        return None

    def holds(self, key: int) -> bool:
        return True


class SessionLocks:
    """PostgreSQL session advisory locks, taken and released through ``query`` (the
    store's connection, under its lock). PostgreSQL counts a session's locks; so does
    this, to ask the server only on the first take and the last release."""

    def __init__(self, query: Query) -> None:
        self._query = query
        self._held: Counter[tuple[int, bool]] = Counter()

    def try_lock(self, key: int, *, shared: bool = False) -> bool:
        if self._held[(key, shared)] == 0:
            fn = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
            if not self._query(f"SELECT {fn}(?)", (key,))[0][0]:
                return False
        self._held[(key, shared)] += 1
        return True

    def unlock(self, key: int, *, shared: bool = False) -> None:
        if self._held[(key, shared)] == 0:
            return
        self._held[(key, shared)] -= 1
        if self._held[(key, shared)] == 0:
            fn = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
            self._query(f"SELECT {fn}(?)", (key,))

    def is_free(self, key: int) -> bool:
        if self._held[(key, False)] or self._held[(key, True)]:
            # Our own: free of others only if PostgreSQL says no one else has it.
            return not self._others(key)
        if self.try_lock(key):
            self.unlock(key)
            return True
        return False

    def holder(self, key: int) -> str | None:
        rows = self._others(key)
        if not rows:
            return None
        name, pid, addr = rows[0]
        where = f"pid {pid}" + (f" at {addr}" if addr else "")
        return f"{name} ({where})" if name else where

    def holds(self, key: int) -> bool:
        if not (self._held[(key, False)] or self._held[(key, True)]):
            return False
        high, low = _halves(key)
        return bool(self._query(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = ?"
            " AND objid = ? AND objsubid = 1 AND granted AND pid = pg_backend_pid()",
            (high, low),
        )[0][0])

    def _others(self, key: int) -> list[tuple[Any, ...]]:
        return self._query(
            "SELECT a.application_name, l.pid, host(a.client_addr) FROM pg_locks l"
            " LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.classid = ? AND l.objid = ?"
            " AND l.objsubid = 1 AND l.granted AND l.pid != pg_backend_pid()"
            " ORDER BY l.pid LIMIT 1",
            _halves(key),
        )


def _halves(key: int) -> tuple[int, int]:
    """A bigint advisory lock shows in pg_locks as its high and low 32 bits."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF

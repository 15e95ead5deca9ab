"""The append side of the audit log: one fsync'd, hash-chained JSON line per event."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from archiver.audit.chain import GENESIS_HASH, AuditLine, check_line, line_hash, record_problem
from archiver.audit.receipt import LastLine
from archiver.errors import AuditError, AuditLockedError
from archiver.state import files

log = logging.getLogger(__name__)

# Lines hold one batch's attempt ids, so they can be tens of kilobytes; read back in blocks.
_BLOCK = 64 * 1024
# A first line longer than this is not one archiver wrote.
_FIRST_LINE_MAX = 4 * 1024 * 1024

WHAT = "the audit log"
REFUSED = (
    "archiver writes only an audit log of its own: point audit_log.path at a new file, "
    "or move this one aside"
)

# How long an append or a read waits for another process's hold on the log's lock. A holder
# is another run appending (one write and one fsync: milliseconds), so a wait this long
# means something holds the lock and is not letting go (a stopped process, a program
# holding an flock on the file): named rather than waited for without end.
LOCK_WAIT_SECONDS = 10.0
_LOCK_POLL_MAX = 0.05

# Logs on a file system without flock, warned about once each (a run appends per batch).
_UNLOCKABLE: set[Path] = set()

# The state store's record of the last line written to a log: (seq, hash), or None when
# it has none for that file (``Events.audit_checkpoint``).
Checkpoint = Callable[[Path], LastLine | None]


class AuditLog:
    """An append-only JSON Lines file whose lines are chained by SHA-256 (see ``chain``).

    Appends are taken in turn, across processes too: runs with state stores of their own
    (two state folders, or runs of a shared PostgreSQL store, which lock campaigns, not the
    whole store) may name the same log. An append holds an exclusive ``flock`` on the file
    from reading its last line (and dropping a torn one) until its write is fsync'd, so
    every append chains onto the line before it. The lock is waited for at most
    ``LOCK_WAIT_SECONDS``, then refused naming the file (AuditLockedError: exit 75, try
    again later). Reading the log's
    start and end (``tail``, opening it) holds a shared one, so a reader never sees half an
    append; ``verify_file`` takes it only to find where the log ends, then reads up to there
    (a long check does not hold appends up). On a file system that does not support
    ``flock`` (some network ones) the log is used without the lock, with a warning.

    Each append is a single ``O_APPEND`` write followed by ``fsync``, and returns only after
    that, so a line without its trailing newline is the remains of a write that was cut
    short and never acknowledged (a write in progress holds the lock, so it is never taken
    for one).

    The log is archiver's own or it is left alone. It is opened with ``O_NOFOLLOW`` and
    created 0600. A symbolic link, anything but a regular file, another user's file, and a
    file that is not empty and does not begin with a chain start (seq 1, ``prev_hash`` of 64
    zeros, its own hash right) are refused before anything is read from or written to them.
    A torn last line is dropped (and nothing else) only when, besides, the state store has
    a receipt for a line written to this file (``checkpoint``, given by the run); without
    one the log is refused as it is. ``verify_file`` reports a torn line without touching it.

    The file is never read whole: the last line is found by reading back from the end.
    """

    def __init__(self, path: Path, *, checkpoint: Checkpoint | None = None) -> None:
        self.path = path
        self.checkpoint = checkpoint
        # The store vouching for the log is shared by several machines (PostgreSQL).
        self.shared_store = False
        # Whether this process checked the log's end against the store's record (once:
        # what it appends after that, it knows).
        self._end_checked = False
        try:
            fd = self._open_existing()
            if fd is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                return
            try:
                lock(fd, path, shared=True)
                self._check_start(fd)
            finally:
                os.close(fd)
        except OSError as err:
            raise files.storage_error(WHAT, path, err) from err

    def tail(self) -> AuditLine | None:
        """The last complete line, or None for an empty or missing log.

        Raises AuditError when that line is damaged: extending a broken chain would hide
        where it broke.
        """
        try:
            fd = self._open_existing()
            if fd is None:
                return None
            try:
                lock(fd, self.path, shared=True)
                self._check_start(fd)
                return self._last(fd)
            finally:
                os.close(fd)
        except OSError as err:
            raise files.storage_error(WHAT, self.path, err) from err

    def append(self, record: Mapping[str, Any], *, event_id: str) -> AuditLine:
        """Chain ``record`` onto the log as one line; durable on disk when this returns."""
        return self.append_many([(record, event_id)])[0]

    def append_many(
        self, records: Sequence[tuple[Mapping[str, Any], str]], *,
        unrecorded: Collection[str] = (),
    ) -> list[AuditLine]:
        """Chain (record, event_id) pairs onto the log, in order, as one write and one
        ``fsync``: durable on disk when this returns. A write cut short leaves whole lines
        and at most one torn one, as a single append does; one that fails leaves none.

        ``unrecorded``: event ids the state store has not recorded written (its pending
        ones). A log ending with one of them ends past the store's record, not before it:
        a run wrote that line and died before the store heard (also into a new chain
        started after the log was moved aside)."""
        for record, _ in records:
            problem = record_problem(record)
            if problem is not None:
                raise AuditError(problem)
        written: list[AuditLine] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, created = files.open_private(
                self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, WHAT, REFUSED, tighten=False
            )
            try:
                # Held until the fd is closed, after the write's fsync: another process's
                # append cannot come between reading the last line and writing after it,
                # and a torn tail seen here is no write in progress.
                lock(fd, self.path, shared=False)
                self._check_start(fd)
                self._drop_torn_tail(fd)
                prev = self._last(fd)
                self._check_not_cut(prev, unrecorded)
                data = bytearray()
                for record, event_id in records:
                    line = _chained(record, event_id, prev)
                    data += json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode()
                    data += b"\n"
                    prev = AuditLine(seq=line["seq"], hash=line["hash"], event_id=event_id)
                    written.append(prev)
                _write(fd, bytes(data))
            finally:
                os.close(fd)
        except OSError as err:
            raise files.storage_error(WHAT, self.path, err) from err
        if created:
            files.fsync_dir(self.path.parent)
        return written

    # -- the file is ours ------------------------------------------------------------
    def _open_existing(self) -> int | None:
        if not files.check_private(self.path, WHAT, REFUSED, tighten=False):
            return None
        fd, _ = files.open_private(self.path, os.O_RDONLY, WHAT, REFUSED, tighten=False)
        return fd

    def _check_start(self, fd: int) -> None:
        """Refuse a file that is not empty and does not begin with an audit chain (checked
        on every use: reading the first line is cheap next to an fsync)."""
        if os.fstat(fd).st_size == 0:
            return
        problem = _not_a_chain_start(_first_line(fd))
        if problem is not None:
            raise files.refused(
                WHAT, self.path,
                f"it is not empty and does not begin an archiver audit chain ({problem})",
                REFUSED,
            )

    def _drop_torn_tail(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return
        if self.checkpoint is None or self.checkpoint(self.path) is None:
            raise files.refused(
                WHAT, self.path,
                "its last line is incomplete and no state store recorded writing to this file",
                "archiver repairs only a log it has written; check it with "
                f"`archiver audit verify {self.path}` and remove the incomplete line yourself",
            )
        keep = _line_start(fd, size)
        log.warning(
            "audit log %s: dropping %d bytes of an interrupted write at its end",
            self.path,
            size - keep,
        )
        os.ftruncate(fd, keep)
        os.fsync(fd)

    def _check_not_cut(self, last: AuditLine | None, unrecorded: Collection[str]) -> None:
        """Refuse to extend a log that ends before the line the state store recorded
        writing to it: its end was cut, and lines chained onto the cut would move the
        store's record past it, so `audit verify --state` could no longer tell. A missing
        or empty log starts a new chain (a log moved aside, as the README says to)."""
        if self._end_checked or self.checkpoint is None or last is None:
            return
        if last.event_id in unrecorded:
            self._end_checked = True  # the store records it once this append returns
            return
        recorded = self.checkpoint(self.path)
        self._end_checked = True
        if recorded is None:
            return
        seq, digest = recorded
        if last.seq > seq or (last.seq == seq and last.hash == digest):
            return  # later lines: written by a run that died before the store heard
        what = (f"ends at line {last.seq}, but the state store recorded line {seq} written "
                "to it: lines were cut off its end") if last.seq < seq else (
                f"line {seq} is not the line the state store recorded writing there")
        self._end_checked = False  # a restored log is checked again
        shared = (
            " With a state store several machines share, this may also be another "
            "machine's log at this path: they must all write one file on storage they "
            "share (README: \"Shared state in PostgreSQL\")."
        ) if self.shared_store else ""
        raise AuditError(
            f"the audit log {self.path} {what}; nothing is appended to it. Restore it from "
            f"a backup, or move it aside for a new chain to start "
            f"(`archiver audit verify {self.path} --state ...` names the line).{shared}"
        )

    def _last(self, fd: int) -> AuditLine | None:
        raw = _last_line(fd)
        if raw is None:
            return None
        checked = check_line(raw)
        if isinstance(checked, str):
            raise AuditError(
                f"{self.path}: the last line is damaged ({checked}); "
                f"run `archiver audit verify {self.path}`"
            )
        return checked[0]


def lock(fd: int, path: Path, *, shared: bool) -> None:
    """Take an ``flock`` on ``fd`` (the log at ``path``): shared for a reader, exclusive for
    an append; released when ``fd`` is closed. Another process holding it is waited for up
    to ``LOCK_WAIT_SECONDS``, then AuditLockedError. A file system that does not support
    ``flock`` (ENOLCK, EOPNOTSUPP: some network ones) leaves the log unlocked, with a
    warning, rather than stopping the run."""
    operation = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    pause = 0.001
    while True:
        try:
            fcntl.flock(fd, operation)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(pause, left))
            pause = min(pause * 2, _LOCK_POLL_MAX)
        except OSError as err:
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL):
                raise
            if path not in _UNLOCKABLE:
                _UNLOCKABLE.add(path)
                log.warning(
                    "audit log %s: its file system does not support flock (%s): appends "
                    "from other processes are not serialised; let one run at a time "
                    "write this log", path, err.strerror or err,
                )
            return
    raise AuditLockedError(
        f"the audit log {path}: another process holds its lock and has not let go in "
        f"{LOCK_WAIT_SECONDS:g} seconds (an append takes milliseconds: a stopped archiver "
        f"run, or a program holding an flock on the file, may be keeping it); nothing was "
        f"{'read' if shared else 'appended'}. Run again once it lets go"
    )


def settled_end(fd: int, path: Path) -> int:
    """The size of the log at ``path`` between appends: read under the shared lock, which is
    let go at once. Bytes before it are whole appends (or the remains of one cut short by
    a crash), and appends only add after it."""
    lock(fd, path, shared=True)
    try:
        return os.fstat(fd).st_size
    finally:
        with suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)


def _chained(record: Mapping[str, Any], event_id: str, prev: AuditLine | None) -> dict[str, Any]:
    body = {
        "seq": prev.seq + 1 if prev else 1,
        "event_id": event_id,
        **record,
        "prev_hash": prev.hash if prev else GENESIS_HASH,
    }
    try:
        # Round-trip first so the hash covers exactly what a reader will parse
        # (int dict keys become strings, tuples become lists).
        line: dict[str, Any] = json.loads(json.dumps(body, ensure_ascii=False, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise AuditError(f"the audit record is not plain JSON: {err}") from err
    line["hash"] = line_hash(line)
    return line


def _write(fd: int, data: bytes) -> None:
    start = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError:
        # Leave no half line behind (e.g. disk full) for the next append to follow.
        with suppress(OSError):
            os.ftruncate(fd, start)
        raise


def _not_a_chain_start(raw: bytes | None) -> str | None:
    """Why ``raw`` is not the first line of an audit chain; None when it is."""
    if raw is None:
        return "no complete first line"
    checked = check_line(raw)
    if isinstance(checked, str):
        return f"its first line: {checked.split(' (')[0].split(':')[0]}"
    line, prev_hash = checked
    if line.seq != 1 or prev_hash != GENESIS_HASH:
        return f"its first line has seq {line.seq}, not the chain's start"
    return None


def _first_line(fd: int) -> bytes | None:
    """The first line with its newline; None when there is no newline near the start."""
    data = b""
    while len(data) < _FIRST_LINE_MAX:
        block = os.pread(fd, _BLOCK, len(data))
        if not block:
            return None
        found = block.find(b"\n")
        if found >= 0:
            return data + block[: found + 1]
        data += block
    return None


def _last_line(fd: int) -> bytes | None:
    end = os.fstat(fd).st_size
    if end and os.pread(fd, 1, end - 1) != b"\n":
        end = _line_start(fd, end)  # skip a torn line
    if end == 0:
        return None
    start = _line_start(fd, end - 1)
    return os.pread(fd, end - start, start)


def _line_start(fd: int, end: int) -> int:
    """Offset just after the last newline before ``end`` (0 if there is none)."""
    pos = end
    while pos > 0:
        step = min(_BLOCK, pos)
        found = os.pread(fd, step, pos - step).rfind(b"\n")
        if found >= 0:
            return pos - step + found + 1
        pos -= step
    return 0

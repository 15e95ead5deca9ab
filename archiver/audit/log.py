"""The append side of the audit log: one fsync'd, hash-chained JSON line per event."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, BinaryIO

from archiver.audit.chain import CHAIN_KEYS, GENESIS_HASH, AuditLine, check_line, line_hash
from archiver.errors import AuditError

log = logging.getLogger(__name__)

# Lines hold one batch's attempt ids, so they can be tens of kilobytes; read back in blocks.
_BLOCK = 64 * 1024


class AuditLog:
    """An append-only JSON Lines file whose lines are chained by SHA-256 (see ``chain``).

    Appends come from one process at a time: the caller holds the run lock. Each append is
    a single ``O_APPEND`` write followed by ``fsync``, and returns only after that, so a line
    without its trailing newline is the remains of a write that was cut short and never
    acknowledged. Opening the log (and every append) removes such a torn last line, and
    nothing else, so the next line chains onto the last complete one. ``verify_file``
    reports a torn line instead of touching the file.

    The file is never read whole: the last line is found by reading back from the end.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._drop_torn_tail()
        except OSError as err:
            raise AuditError(f"cannot open audit log {path}: {err.strerror or err}") from err

    def tail(self) -> AuditLine | None:
        """The last complete line, or None for an empty log.

        Raises AuditError when that line is damaged: extending a broken chain would hide
        where it broke.
        """
        try:
            raw = self._last_line()
        except OSError as err:
            raise AuditError(f"cannot read audit log {self.path}: {err.strerror}") from err
        if raw is None:
            return None
        checked = check_line(raw)
        if isinstance(checked, str):
            raise AuditError(
                f"{self.path}: the last line is damaged ({checked}); "
                f"run `archiver audit verify {self.path}`"
            )
        return checked[0]

    def append(self, record: Mapping[str, Any], *, event_id: str) -> AuditLine:
        """Chain ``record`` onto the log as one line; durable on disk when this returns."""
        if not isinstance(record, Mapping):
            raise AuditError(f"an audit record must be a JSON object, not {type(record).__name__}")
        reserved = sorted(CHAIN_KEYS & record.keys())
        if reserved:
            raise AuditError(
                f"the audit record sets {', '.join(reserved)}: the audit log adds these itself; "
                "remove them from the audit template"
            )
        try:
            self._drop_torn_tail()
        except OSError as err:
            raise AuditError(f"cannot open audit log {self.path}: {err.strerror}") from err
        prev = self.tail()
        body = {
            "seq": prev.seq + 1 if prev else 1,
            "event_id": event_id,
            **record,
            "prev_hash": prev.hash if prev else GENESIS_HASH,
        }
        try:
            # Round-trip first so the hash covers exactly what a reader will parse
            # (int dict keys become strings, tuples become lists).
            line = json.loads(json.dumps(body, ensure_ascii=False, allow_nan=False))
        except (TypeError, ValueError) as err:
            raise AuditError(f"the audit record is not plain JSON: {err}") from err
        line["hash"] = line_hash(line)
        data = json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._write(data + b"\n")
        return AuditLine(seq=line["seq"], hash=line["hash"], event_id=event_id)

    def _write(self, data: bytes) -> None:
        created = not self.path.exists()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as err:
            raise AuditError(f"cannot open audit log {self.path}: {err.strerror}") from err
        try:
            start = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError as err:
                # Leave no half line behind (e.g. disk full) for the next append to follow.
                with suppress(OSError):
                    os.ftruncate(fd, start)
                raise AuditError(f"cannot write audit log {self.path}: {err.strerror}") from err
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.path.parent)

    def _drop_torn_tail(self) -> None:
        try:
            f = self.path.open("r+b")
        except FileNotFoundError:
            return
        with f:
            size = f.seek(0, os.SEEK_END)
            if size == 0 or _byte_at(f, size - 1) == b"\n":
                return
            keep = _line_start(f, size)
            log.warning(
                "audit log %s: dropping %d bytes of an interrupted write at its end",
                self.path,
                size - keep,
            )
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())

    def _last_line(self) -> bytes | None:
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return None
        with f:
            end = f.seek(0, os.SEEK_END)
            if end and _byte_at(f, end - 1) != b"\n":
                end = _line_start(f, end)  # skip a torn line that appeared since opening
            if end == 0:
                return None
            start = _line_start(f, end - 1)
            f.seek(start)
            return f.read(end - start)


def _byte_at(f: BinaryIO, offset: int) -> bytes:
    f.seek(offset)
    return f.read(1)


def _line_start(f: BinaryIO, end: int) -> int:
    """Offset just after the last newline before ``end`` (0 if there is none)."""
    pos = end
    while pos > 0:
        step = min(_BLOCK, pos)
        f.seek(pos - step)
        found = f.read(step).rfind(b"\n")
        if found >= 0:
            return pos - step + found + 1
        pos -= step
    return 0


def _fsync_dir(folder: Path) -> None:
    # A new file's directory entry must be durable too; not every platform allows it.
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

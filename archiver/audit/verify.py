"""Check an audit log's hash chain, streaming, and name the first line that breaks it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from archiver.audit.chain import GENESIS_HASH, AuditLine, check_line
from archiver.audit.log import settled_end


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of :func:`verify_file`.

    ``lines`` counts the lines that verified before the first bad one (all of them when
    ``ok``); ``first_bad_line`` is 1-based.
    """

    ok: bool
    lines: int
    first_bad_line: int | None
    message: str


def verify_file(path: Path) -> VerifyResult:
    """Verify every line of the audit log at ``path``; raises OSError if it cannot be read.

    A hash chain cannot tell that lines were cut off the end: compare the last seq and hash
    in the message with a copy kept elsewhere to rule that out.

    The log is checked as it was between two appends: where it ends is read under its
    shared lock (raises AuditLockedError when another process holds it too long; see
    ``AuditLog``), and lines appended after that are not read, so an append in progress is
    not taken for a torn line. The lock is not held while reading: appends go on.
    """
    prev: AuditLine | None = None
    with path.open("rb") as f:
        end = settled_end(f.fileno(), path)
        offset = 0
        for number, raw in enumerate(f, start=1):
            if offset >= end:
                break
            raw = raw[: end - offset]
            offset += len(raw)
            follows = _follows(raw, prev, number)
            if isinstance(follows, str):
                return VerifyResult(False, number - 1, number, follows)
            prev = follows
    if prev is None:
        return VerifyResult(True, 0, None, "empty audit log")
    message = f"{prev.seq} lines, chain intact; last seq {prev.seq}, hash {prev.hash}"
    # An intact chain numbers its lines 1..n, so the last seq is the line count.
    return VerifyResult(True, prev.seq, None, message)


def _follows(raw: bytes, prev: AuditLine | None, number: int) -> AuditLine | str:
    """The line, if it is intact and follows ``prev``; else what is wrong with it."""
    if not raw.endswith(b"\n"):
        return (
            "incomplete last line (no newline at its end): a write was interrupted; "
            "the next append drops it"
        )
    checked = check_line(raw)
    if isinstance(checked, str):
        return checked
    line, prev_hash = checked
    expected = prev.seq + 1 if prev else 1
    if line.seq > expected:
        return (
            f"seq {line.seq} where {expected} was expected: "
            "lines were deleted before this one, or lines were reordered"
        )
    if line.seq < expected:
        return (
            f"seq {line.seq} where {expected} was expected: "
            "a line was inserted here, or lines were reordered"
        )
    if prev is None and prev_hash != GENESIS_HASH:
        return "prev_hash of the first line is not 64 zeros: earlier lines were removed"
    if prev is not None and prev_hash != prev.hash:
        return (
            f"prev_hash does not match the hash of line {number - 1}: that line was "
            "replaced (edited and re-hashed), or this line was inserted"
        )
    return line

"""Time as archiver records it: aware UTC datetimes, written as ISO 8601 text to the
millisecond with a ``Z`` (``2026-03-01T12:00:00.000Z``).

Text in that one shape sorts as the times do, so the state store compares stored times
as text (a cutoff is a stamp too). Whatever writes times takes a :data:`Clock`, the real
one by default, so tests can age history without waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    """``moment`` as stored; a naive datetime is refused (its zone is unknown)."""
    if moment.tzinfo is None:
        raise ValueError(f"a naive datetime has no known time zone: {moment!r}")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now() -> str:
    return stamp(utc_now())

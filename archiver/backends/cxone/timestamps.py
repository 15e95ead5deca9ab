"""CXone's UTC timestamps (``2026-11-01T08:15:02.417Z``) as exact, comparable numbers.

The API's fractions run from none to seven digits (.NET ticks); ``datetime`` keeps
six, so times are compared as integer nanoseconds since the epoch instead, and a
timestamp sent back to the API is written at millisecond precision.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_NS = 1_000_000_000
MILLISECOND_NS = 1_000_000
_PATTERN = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]00:?00)?",
    re.IGNORECASE,
)


def parse(text: str) -> int | None:
    """Nanoseconds since the epoch, or None when ``text`` is not a UTC timestamp.

    A time without a zone is read as UTC (the API writes UTC); any other offset
    is refused rather than guessed.
    """
    m = _PATTERN.fullmatch(text.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        whole = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    fraction = (m.group(7) or "").ljust(9, "0")
    return int(whole.timestamp()) * _NS + int(fraction or 0)


def format_ms(ns: int) -> str:
    """``ns`` floored to the millisecond, as the API writes dates (UTC, literal Z)."""
    seconds, rest = divmod(ns, _NS)
    whole = datetime.fromtimestamp(seconds, UTC)
    # The year by hand: strftime's %Y writes year 999 as `999`, which nothing parses back.
    return f"{whole.year:04d}-{whole:%m-%dT%H:%M:%S}.{rest // MILLISECOND_NS:03d}Z"


def floor_ms(ns: int) -> int:
    return ns - ns % MILLISECOND_NS

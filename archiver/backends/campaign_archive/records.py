"""Listed records of the campaign archive API as the engine's :class:`AttemptRecord`.

The wire model (:mod:`archiver.cxone.wire`) parses strictly: a record with a missing
id, a null or a wrong type is a :class:`MalformedRecord` naming the field, never
coerced. Policy test fixtures are written in this format too.
"""

from __future__ import annotations

from archiver.cxone.wire import Malformed, parse_attempt
from archiver.engine.backend import AttemptRecord, MalformedRecord


def parse_record(raw: object) -> AttemptRecord | MalformedRecord:
    """One listed record; never raises for bad data."""
    parsed = parse_attempt(raw)
    if isinstance(parsed, Malformed):
        return MalformedRecord(parsed.attempt_id, parsed.field, parsed.reason)
    # Positional, in AttemptRecord's field order: once per listed attempt, and a named
    # tuple is built faster so.
    return AttemptRecord(
        parsed.id,
        parsed.contact_id,
        parsed.outcome_code,
        parsed.disposition,
        parsed.duration,
        parsed.anonymized,
        parsed.retention_days,
    )

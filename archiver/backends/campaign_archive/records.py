"""Listed records of the campaign archive API as the engine's :class:`AttemptRecord`.

The wire model (:mod:`archiver.cxone.wire`) parses strictly: a record with a missing
id, a null or a wrong type is a :class:`MalformedRecord` naming the field, never
coerced; one without a usable id carries the digest of its content. Policy test
fixtures are written in this format too.
"""

from __future__ import annotations

from archiver.cxone.wire import Malformed, parse_attempt
from archiver.engine.backend import AttemptRecord, MalformedRecord, content_digest


def parse_record(raw: object) -> AttemptRecord | MalformedRecord:
    """One listed record; never raises for bad data."""
    parsed = parse_attempt(raw)
    if isinstance(parsed, Malformed):
        # Without an id, the record is known by its content (archiver.engine.noid).
        digest = "" if parsed.attempt_id else content_digest(raw)
        return MalformedRecord(parsed.attempt_id, parsed.field, parsed.reason, digest)
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

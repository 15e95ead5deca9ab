"""Names for listed records that have no usable id (missing, null, empty, not an id).

Such a record is quarantined, and its row in the state store needs a key. Its place in
the listing will not do: a run archives attempts, they leave the listing, and the next
run would list the same record at another offset, under another name, adding a row
for it on every run. So it is named by its content, which does not move:
``(no id, sha256 0123456789abcdef)``, the first 16 hex digits of the SHA-256 of its
canonical JSON (:func:`archiver.engine.backend.content_digest`). Only a hash: nothing
of the record (a phone number, a name) is in the name, the logs or the reports.

The same content listed more than once in one listing gets ``, copy 2``, ``, copy 3``
and so on, in listing order: two identical records are two rows, and a rerun that
lists them again names them alike. Two different records whose digests share their
first 16 hex digits are told apart the same way.
"""

from __future__ import annotations

from archiver.engine.backend import AttemptRecord, MalformedRecord, content_digest

DIGITS = 16  # 64 bits: a collision is a copy suffix, never two records on one row


class NoIdNames:
    """The names of one listing's records without an id (one campaign, one pass)."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def name(self, record: AttemptRecord | MalformedRecord) -> str:
        """The record's name when it has no usable id, else ""."""
        if not isinstance(record, MalformedRecord) or record.attempt_id:
            return ""
        # A backend that gave no digest: what is known of the record names it.
        digest = record.digest or content_digest([record.field, record.reason])
        short = digest[:DIGITS]
        copy = self._seen.get(short, 0) + 1
        self._seen[short] = copy
        if copy == 1:
            return f"(no id, sha256 {short})"
        return f"(no id, sha256 {short}, copy {copy})"

"""Listed CXone records as the engine's :class:`AttemptRecord`, one field at a time.

A record that lacks a field the engine needs, or has one of the wrong type, is a
:class:`MalformedRecord` naming that field (it is quarantined), never a default; one
without a usable id carries the digest of its content.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType

from archiver.backends.cxone import timestamps, wire
from archiver.backends.cxone.paging import Row
from archiver.engine.backend import AttemptRecord, MalformedRecord, content_digest

# The outcome of a record without a disposition (no agent dispositioned it). Not a
# tenant's disposition name, so a policy approves it only by naming it.
NO_DISPOSITION = "(none)"
# The handle's key for an attempt's calling list (beside the prospect's externalId).
LIST_HANDLE = "listId"
# Longer than any call (68 years), and a number every store and sink keeps as it is.
MAX_DURATION_SECONDS = 2**31 - 1


class Malformed(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def id_text(value: object) -> str | None:
    """An id the API writes as a number (or, in some versions, a string), as text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def row(raw: object, key_field: str, time_field: str | None) -> Row:
    """How paging sees a raw record: its id (else its whole text) and its time."""
    fields = raw if isinstance(raw, Mapping) else {}
    # A record without an id is known by its whole text, after a space: an id is
    # stripped, so none starts with one, and a bare 5 in the list (text "5") is never
    # taken for contact 5, which paging would then drop as already seen.
    key = id_text(fields.get(key_field)) or " " + json.dumps(raw, sort_keys=True, default=str)
    at = None
    if time_field is not None and isinstance(fields.get(time_field), str):
        at = timestamps.parse(fields[time_field])
    return Row(key, at, raw)


def contact(
    raw: object, campaign_id: str, disposition_name: Callable[[int], str | None]
) -> AttemptRecord | MalformedRecord:
    """A completed contact (``GET contacts/completed``)."""
    fields = raw if isinstance(raw, Mapping) else {}
    cid = id_text(fields.get(wire.CONTACT_ID)) or ""
    try:
        if not isinstance(raw, Mapping):
            raise Malformed("(record)", "record is not a JSON object")
        if not cid:
            raise Malformed(wire.CONTACT_ID, "missing or not an id")
        updated = fields.get(wire.LAST_UPDATE_TIME)
        if not isinstance(updated, str) or timestamps.parse(updated) is None:
            raise Malformed(wire.LAST_UPDATE_TIME, "missing or not a UTC timestamp")
        listed_under = id_text(fields.get(wire.CAMPAIGN_ID))
        if listed_under is not None and listed_under != campaign_id:
            raise Malformed(wire.CAMPAIGN_ID, f"is {listed_under}, listed for {campaign_id}")
        return AttemptRecord(
            id=cid,
            contact_id=cid,
            outcome=_outcome(fields.get(wire.PRIMARY_DISPOSITION_ID), disposition_name),
            duration=_duration(fields.get(wire.TOTAL_DURATION_SECONDS)),
            updated_at=updated,
            handle=MappingProxyType({wire.CONTACT_ID: cid}),
        )
    except Malformed as err:
        return _malformed(cid, err, raw)


def attempt(raw: object, list_id: str) -> AttemptRecord | MalformedRecord:
    """A calling list's finalized attempt (``GET lists/call-lists/{id}/attempts``).

    Its id is the attempt's own contactId (one per call, as in ``contacts/completed``);
    its contact is the prospect's externalId, which ``retire`` removes from the list.
    """
    fields = raw if isinstance(raw, Mapping) else {}
    external = id_text(fields.get(wire.EXTERNAL_ID)) or ""
    own = id_text(fields.get(wire.CONTACT_ID)) or ""
    try:
        if not isinstance(raw, Mapping):
            raise Malformed("(record)", "record is not a JSON object")
        if not external:
            raise Malformed(wire.EXTERNAL_ID, "missing or not an id")
        if not own:
            raise Malformed(wire.CONTACT_ID, "missing or not an id")
        agent = _text(fields.get(wire.AGENT_DISP_DESC), wire.AGENT_DISP_DESC)
        system = _text(fields.get(wire.SYSTEM_CLASS_NAME), wire.SYSTEM_CLASS_NAME)
        return AttemptRecord(
            id=own,
            contact_id=external,
            outcome=agent or system or NO_DISPOSITION,
            disposition=system,
            handle=MappingProxyType({wire.EXTERNAL_ID: external, LIST_HANDLE: list_id}),
        )
    except Malformed as err:
        return _malformed(own or external, err, raw)


def _malformed(found_id: str, err: Malformed, raw: object) -> MalformedRecord:
    """Quarantined as ``found_id``; without one, known by its content (archiver.engine.noid)."""
    digest = "" if found_id else content_digest(raw)
    return MalformedRecord(found_id, err.field, err.reason, digest)


def _outcome(value: object, name_of: Callable[[int], str | None]) -> str:
    if value is None:
        return NO_DISPOSITION
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(wire.PRIMARY_DISPOSITION_ID, "not an integer")
    name = name_of(value)
    if name is None:
        raise Malformed(wire.PRIMARY_DISPOSITION_ID, f"{value} is not a disposition of the tenant")
    return name


def _duration(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Malformed(wire.TOTAL_DURATION_SECONDS, "not a number")
    if value < 0:
        raise Malformed(wire.TOTAL_DURATION_SECONDS, "negative")
    if value > MAX_DURATION_SECONDS:
        raise Malformed(wire.TOTAL_DURATION_SECONDS, f"over {MAX_DURATION_SECONDS} seconds")
    return round(value)


def _text(value: object, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Malformed(field, "not a string")
    return value

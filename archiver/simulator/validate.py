"""Strict reading of request bodies: exact camelCase keys, exact JSON types.

Written by hand from the contract rather than with a schema library so that it
stays an independent reading: nothing here is shared with the client's models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from archiver.jsonsafe import type_name

MAX_ITEMS = 200
RETENTION_RANGE = range(1, 3651)
CAMPAIGN_STATUSES = ("PAUSED", "ACTIVE")

# key -> JSON type name, in the order the contract lists them.
_TOP = {"campaignId": "string", "items": "array", "forceColdStorage": "boolean"}
_ITEM = {
    "contactId": "string",
    "attemptId": "string",
    "statusMatrix": "object",
    "retentionPeriodDays": "integer",
    "deleteActive": "boolean",
}
_MATRIX = {
    "outcomeCode": "string",
    "disposition": "string",
    "callDurationSeconds": "integer",
    "anonymized": "boolean",
}


class BodyError(Exception):
    """The body breaks the contract; answered 400 with ``error`` and ``detail``."""

    def __init__(self, detail: str, error: str = "invalid_request") -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ArchiveItem:
    contact_id: str
    attempt_id: str
    outcome_code: str
    duration: int


@dataclass(frozen=True, slots=True)
class ArchiveBody:
    campaign_id: str
    items: list[ArchiveItem]


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as err:
        raise BodyError(f"body is not valid JSON: {err}", "invalid_json") from err


def read_archive(body: Any) -> ArchiveBody:
    """Check shape, types and ranges of a parsed archive body.

    Checks against the listed attempts need the campaign data and happen later.
    """
    _check_object(body, _TOP, "$")
    items = body["items"]
    if not items:
        raise BodyError("items must not be empty")
    if len(items) > MAX_ITEMS:
        raise BodyError(f"items has {len(items)} entries; at most {MAX_ITEMS} are allowed")
    parsed = []
    for n, item in enumerate(items):
        where = f"$.items[{n}]"
        _check_object(item, _ITEM, where)
        matrix = item["statusMatrix"]
        _check_object(matrix, _MATRIX, f"{where}.statusMatrix")
        for key in ("contactId", "attemptId"):
            if not item[key]:
                raise BodyError(f"{where}.{key} must not be empty")
        if not matrix["outcomeCode"]:
            raise BodyError(f"{where}.statusMatrix.outcomeCode must not be empty")
        if matrix["anonymized"] is not True:
            raise BodyError(f"{where}.statusMatrix.anonymized is false; only anonymized "
                            "attempts may be archived", "not_anonymized")
        if matrix["callDurationSeconds"] < 0:
            raise BodyError(f"{where}.statusMatrix.callDurationSeconds must be >= 0")
        if item["retentionPeriodDays"] not in RETENTION_RANGE:
            raise BodyError(
                f"{where}.retentionPeriodDays is {item['retentionPeriodDays']}; "
                f"it must be between {RETENTION_RANGE.start} and {RETENTION_RANGE.stop - 1}"
            )
        parsed.append(
            ArchiveItem(
                contact_id=item["contactId"],
                attempt_id=item["attemptId"],
                outcome_code=matrix["outcomeCode"],
                duration=matrix["callDurationSeconds"],
            )
        )
    return ArchiveBody(campaign_id=body["campaignId"], items=parsed)


def parse_status_patch(raw: bytes) -> str:
    """The target status of ``PATCH /campaigns/{id}``."""
    body = parse_json(raw)
    _check_object(body, {"status": "string"}, "$")
    status: str = body["status"]
    if status not in CAMPAIGN_STATUSES:
        raise BodyError(f"$.status is {status!r}; expected one of {', '.join(CAMPAIGN_STATUSES)}")
    return status


def _check_object(value: Any, keys: dict[str, str], where: str) -> None:
    if not isinstance(value, dict):
        raise BodyError(f"{where} must be an object, got {type_name(value)}")
    for key in value:
        if key not in keys:
            hint = " (keys are camelCase)" if "_" in key else ""
            raise BodyError(f"{where}: unknown key `{key}`{hint}")
    for key, expected in keys.items():
        if key not in value:
            raise BodyError(f"{where}: missing key `{key}`")
        actual = type_name(value[key])
        if actual != expected:
            raise BodyError(f"{where}.{key} must be {expected}, got {actual}")

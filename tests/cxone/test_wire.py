"""The outbound archive body is built, not validated: its shape and its one limit."""

from __future__ import annotations

import json

import pytest

from archiver.cxone import wire


def _item(n: int) -> wire.ArchiveItem:
    return wire.archive_item(
        contact_id=f"c-{n}",
        attempt_id=f"a-{n}",
        outcome_code="NO_ANSWER",
        disposition="COMPLETED",
        call_duration_seconds=n,
        anonymized=True,
        retention_period_days=90,
        delete_active=False,
    )


def test_archive_body_has_the_apis_camel_case_keys() -> None:
    body = wire.archive_request(campaign_id="camp", items=[_item(7)], force_cold_storage=True)
    assert json.loads(json.dumps(body)) == {
        "campaignId": "camp",
        "forceColdStorage": True,
        "items": [
            {
                "contactId": "c-7",
                "attemptId": "a-7",
                "statusMatrix": {
                    "outcomeCode": "NO_ANSWER",
                    "disposition": "COMPLETED",
                    "callDurationSeconds": 7,
                    "anonymized": True,
                },
                "retentionPeriodDays": 90,
                "deleteActive": False,
            }
        ],
    }


def test_archive_body_takes_at_most_200_items() -> None:
    full = [_item(n) for n in range(wire.MAX_ARCHIVE_ITEMS)]
    assert len(wire.archive_request(campaign_id="c", items=full, force_cold_storage=False)["items"]) == 200
    with pytest.raises(ValueError, match="at most 200 items, not 201"):
        wire.archive_request(campaign_id="c", items=[*full, _item(200)], force_cold_storage=False)

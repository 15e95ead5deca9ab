"""The archive body of ``POST .../contacts/archive``, built from decided records.

Every field of every item is the record's own value, as listed (``anonymized``
included: never a constant); ``retentionPeriodDays`` is the retention the policy
decided. ``plan`` and ``test`` render the same body a run sends.
"""

from __future__ import annotations

from collections.abc import Iterable

from archiver.cxone import wire
from archiver.engine.backend import AttemptRecord


def archive_request(
    campaign_id: str,
    records: Iterable[AttemptRecord],
    *,
    force_cold_storage: bool,
    delete_active: bool,
) -> wire.ArchiveRequest:
    """The body for ``records``, each carrying its decided ``retention_days``."""
    return wire.archive_request(
        campaign_id=campaign_id,
        force_cold_storage=force_cold_storage,
        items=[
            wire.archive_item(
                contact_id=r.contact_id,
                attempt_id=r.id,
                outcome_code=r.outcome,
                disposition=r.disposition or "",
                call_duration_seconds=r.duration or 0,
                anonymized=r.anonymized is True,
                retention_period_days=_days(r),
                delete_active=delete_active,
            )
            for r in records
        ],
    )


def _days(record: AttemptRecord) -> int:
    if record.retention_days is None:
        raise ValueError(f"attempt {record.id} has no decided retention")
    return record.retention_days

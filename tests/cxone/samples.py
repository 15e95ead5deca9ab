"""Small fixtures shared by the client's tests."""

from __future__ import annotations

from archiver.cxone import wire
from archiver.policy.model import Connection, Retry

CAMPAIGN = "camp-42"

# Small figures keep every scenario well under a second unless it waits on purpose.
FAST_RETRY = Retry(
    max_attempts=4, initial_backoff_seconds=0.01, max_backoff_seconds=5.0, respect_retry_after=True
)
FAST_CONNECTION = Connection(base_url="embedded", timeout_seconds=2.0, connect_timeout_seconds=1.0, max_in_flight=4)


def batch(campaign_id: str = CAMPAIGN) -> wire.ArchiveRequest:
    """A one-item archive request."""
    item = wire.archive_item(
        contact_id="c-1",
        attempt_id="a-1",
        outcome_code="NO_ANSWER",
        disposition="x",
        call_duration_seconds=3,
        anonymized=True,
        retention_period_days=365,
        delete_active=True,
    )
    return wire.archive_request(campaign_id=campaign_id, items=[item], force_cold_storage=False)

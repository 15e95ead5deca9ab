"""A fake of the engine's Backend protocol, for tests that run the engine in-process."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from archiver.engine.backend import ActResult, AttemptRecord, MalformedRecord, Page


class RecordingBackend:
    """The engine's Backend protocol over a fixed listing, recording every act."""

    name = "campaign-archive"
    fields = frozenset({"outcome", "anonymized", "retention_days", "contact_id"})
    reports_dialing = False

    def __init__(self, listing: Mapping[str, Sequence[AttemptRecord | MalformedRecord]],
                 page_size: int, after_listing: Any = None) -> None:
        self.listing = listing
        self.page_size = page_size
        self.after_listing = after_listing  # called once a campaign's listing ends
        self.acted: list[str] = []

    def pages(self, campaign_id: str, *, since: str | None) -> Iterator[Page]:
        records = list(self.listing.get(campaign_id, ()))
        for start in range(0, len(records), self.page_size):
            yield Page(records[start:start + self.page_size])
        if self.after_listing is not None:
            self.after_listing(campaign_id)

    def act(self, campaign_id: str, batch: Sequence[AttemptRecord], *,
            idempotency_key: str) -> ActResult:
        self.acted.extend(r.id for r in batch)
        return ActResult({r.id: ("archived", "") for r in batch}, status="done", job_id="job")

    def whole_contacts(self, campaign_id: str) -> bool:
        return False

    def dialing(self, campaign_id: str) -> Mapping[str, Any] | None:
        return None

    def pause(self, campaign_id: str, dialing: Mapping[str, Any]) -> None:
        raise AssertionError("nothing dials")

    def resume(self, campaign_id: str, dialing: Mapping[str, Any]) -> None:
        raise AssertionError("nothing dials")

    def cancel(self) -> None:
        pass

    def close(self) -> None:
        pass

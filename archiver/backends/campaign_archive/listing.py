"""The campaign archive API's listing: completed attempts of a campaign, page by page.

Pages are fetched ``window`` at a time in parallel (offsets are known in
advance) and yielded in order; the first short page ends the listing. The
engine lists a campaign completely before archiving any of it, so offsets do
not shift under the listing.

A server is a stranger, so a listing is bounded and checked:

- A listing that never ends (a server that always answers full pages) stops
  after ``MAX_ATTEMPTS_PER_CAMPAIGN`` attempts with an error for that campaign.
- An attempt id listed twice in one listing is counted once: its first copy is
  kept, later copies are dropped (the state store keeps one decision per id, so
  a silent second copy would overwrite the first), and the listing ends with a
  warning naming the campaign and how many copies were dropped. The ids seen are
  kept in memory for the listing (tens of bytes each).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future
from typing import Protocol

from archiver.cxone import wire
from archiver.errors import TerminalApiError

log = logging.getLogger(__name__)

# The most completed attempts one campaign may list: far above any real campaign's
# (calling lists of a few million records are large), so only a listing that never
# ends reaches it. A page cap of MAX_ATTEMPTS_PER_CAMPAIGN / page_size follows.
MAX_ATTEMPTS_PER_CAMPAIGN = 20_000_000


class Lister(Protocol):
    def list_attempts(self, campaign_id: str, *, limit: int, offset: int) -> list[object]: ...


def listing_window(max_in_flight: int, campaigns: int) -> int:
    """Pages each campaign's listing keeps in flight.

    Campaigns share the pool: each looks ahead by its share of it, rounded up so no
    worker idles while every campaign lists (the pool queues the few extra). A wider
    look-ahead would only fetch pages past the end while other campaigns wait.
    """
    return max(1, -(-max_in_flight // max(1, min(campaigns, max_in_flight))))


class ListingSource:
    """Raw records of ``GET .../attempts``, offset-paged with a look-ahead of ``window``."""

    def __init__(
        self,
        client: Lister,
        page_size: int,
        executor: Executor,
        window: int,
        *,
        max_attempts: int | None = None,
    ) -> None:
        self.client = client
        self.page_size = page_size
        self.executor = executor
        self.window = max(1, window)
        limit = MAX_ATTEMPTS_PER_CAMPAIGN if max_attempts is None else max_attempts
        # Full pages allowed; the next one must end the listing.
        self.max_pages = max(1, -(-limit // page_size))

    def _fetch(self, campaign_id: str, offset: int) -> list[object]:
        return self.client.list_attempts(campaign_id, limit=self.page_size, offset=offset)

    def pages(self, campaign_id: str) -> Iterator[Sequence[object]]:
        offset = 0
        fetched = 0
        pending: list[Future[list[object]]] = []
        seen: set[str] = set()
        copies = 0
        try:
            while True:
                while len(pending) < self.window and fetched + len(pending) <= self.max_pages:
                    pending.append(self.executor.submit(self._fetch, campaign_id, offset))
                    offset += self.page_size
                page = pending.pop(0).result()
                fetched += 1
                fresh: list[object] = []
                for raw in page:
                    attempt_id = wire.attempt_id_of(raw)
                    if attempt_id and attempt_id in seen:
                        copies += 1
                        continue
                    if attempt_id:
                        seen.add(attempt_id)
                    fresh.append(raw)
                if len(page) < self.page_size:
                    yield fresh
                    return
                if fetched > self.max_pages:
                    raise self._endless(campaign_id)
                yield fresh
        finally:
            for future in pending:
                future.cancel()
            if copies:
                log.warning(
                    "campaign %s: the listing returned %d copy(ies) of attempt ids it had "
                    "already listed; each attempt was counted once (its first copy)",
                    campaign_id,
                    copies,
                )

    def _endless(self, campaign_id: str) -> TerminalApiError:
        listed = self.max_pages * self.page_size
        return TerminalApiError(
            f"the listing did not end: still full pages after {self.max_pages:,} pages "
            f"({listed:,} attempts, the most one campaign may list); the server keeps "
            "answering full pages",
            campaign_id=campaign_id,
        )

"""Source ``cxone``: completed attempts of a campaign, page by page.

Pages are fetched ``window`` at a time in parallel (offsets are known in
advance) and yielded in order; the first short page ends the listing. The
engine lists a campaign completely before archiving any of it, so offsets do
not shift under the listing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future

from archiver.cxone import CxoneClient


class CxoneSource:
    name = "cxone"

    def __init__(
        self, client: CxoneClient, page_size: int, executor: Executor, window: int
    ) -> None:
        self.client = client
        self.page_size = page_size
        self.executor = executor
        self.window = max(1, window)

    def _fetch(self, campaign_id: str, offset: int) -> list[object]:
        return self.client.list_attempts(campaign_id, limit=self.page_size, offset=offset)

    def pages(self, campaign_id: str) -> Iterator[Sequence[object]]:
        offset = 0
        pending: list[Future[list[object]]] = []
        width = self.window
        try:
            while True:
                while len(pending) < width:
                    pending.append(self.executor.submit(self._fetch, campaign_id, offset))
                    offset += self.page_size
                page = pending.pop(0).result()
                yield page
                if len(page) < self.page_size:
                    return
        finally:
            for future in pending:
                future.cancel()

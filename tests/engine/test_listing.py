"""Listing look-ahead: pages in order, the first short page ends it, a bounded window."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest

from archiver.backends.campaign_archive.listing import Lister, ListingSource, listing_window


class PagingClient:
    """Answers list calls from a list of records, slowly, and counts calls in flight."""

    def __init__(self, total: int) -> None:
        self.records = [{"id": f"a-{n}"} for n in range(total)]
        self.offsets: list[int] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    def list_attempts(self, campaign_id: str, *, limit: int, offset: int) -> list[object]:
        with self._lock:
            self.offsets.append(offset)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(0.01)
        with self._lock:
            self.in_flight -= 1
        return list(self.records[offset : offset + limit])


@pytest.mark.parametrize(("total", "window"), [(0, 3), (250, 1), (250, 3), (300, 3), (1000, 8)])
def test_pages_arrive_in_order_and_the_first_short_page_ends_the_listing(total, window):
    client = PagingClient(total)
    with ThreadPoolExecutor(8) as pool:
        source = ListingSource(cast(Lister, client), 100, pool, window)
        pages = list(source.pages("camp"))
    flat: list[Any] = [r for page in pages for r in page]
    assert flat == client.records
    assert len(pages[-1]) < 100
    assert client.most_in_flight <= window
    # Pages past the short one are only the look-ahead already sent: fewer than the window.
    needed = total // 100 + 1
    assert needed <= len(client.offsets) < needed + window
    assert sorted(client.offsets) == [100 * i for i in range(len(client.offsets))]


@pytest.mark.parametrize(
    ("max_in_flight", "campaigns", "window"),
    [(16, 6, 3), (24, 6, 4), (4, 3, 2), (8, 1, 8), (4, 10, 1), (1, 1, 1)],
)
def test_each_campaign_looks_ahead_by_its_share_of_the_pool_rounded_up(
    max_in_flight, campaigns, window
):
    assert listing_window(max_in_flight, campaigns) == window

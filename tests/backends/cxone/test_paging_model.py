"""The paging algorithm against an in-memory listing that changes between requests.

A model of ``contacts/completed`` (records ordered by (lastUpdateTime, contactId),
``updatedSince`` inclusive or exclusive, skip/top) whose records are updated after
every answer, many of them among the ones just served. The walk must yield every
record exactly once, and after every page every record below the watermark must
have been yielded (the invariant in paging's docstring). A plain skip/top pager,
against the same model, shows the churn is hostile enough to break it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from archiver.backends.cxone import paging, timestamps
from archiver.backends.cxone.paging import Row, walk
from archiver.errors import TerminalApiError, TransientApiError

MS = timestamps.MILLISECOND_NS
T0 = timestamps.parse("2026-09-01T00:00:00Z") or 0


class Listing:
    def __init__(self, stamps: dict[str, int], *, inclusive: bool = True) -> None:
        self.stamps = stamps
        self.inclusive = inclusive
        self.after: Callable[[list[str]], None] = lambda served: None
        self.requests = 0

    def order(self, bound_ns: int) -> list[str]:
        keep = [
            (t, k) for k, t in self.stamps.items()
            if (t >= bound_ns if self.inclusive else t > bound_ns)
        ]
        return [k for _, k in sorted(keep)]

    def fetch(self, bound: str, skip: int, top: int) -> tuple[list[Row], int | None]:
        """One page, and the server's time (the latest stamp: updates stamp later ones)."""
        self.requests += 1
        bound_ns = timestamps.parse(bound) if bound else 0
        assert bound_ns is not None
        served = self.order(bound_ns)[skip: skip + top]
        rows = [Row(k, self.stamps[k], None) for k in served]
        now = max(self.stamps.values(), default=None)
        self.after(served)
        return rows, now

    def update(self, key: str) -> None:
        """A2: a strictly later stamp than any the listing holds."""
        self.stamps[key] = max(self.stamps.values()) + MS


def seeded(rng: random.Random, count: int) -> dict[str, int]:
    stamps: dict[str, int] = {}
    t = T0
    while len(stamps) < count:
        t += rng.choice((1, 1, 7, 1000)) * MS
        for _ in range(rng.choice((1, 1, 2, 5, 40))):  # ties, some longer than a page
            if len(stamps) < count:
                stamps[f"c{len(stamps):05d}"] = t
    return stamps


def hostile(listing: Listing, rng: random.Random, per_request: int) -> None:
    def churn(served: list[str]) -> None:
        for _ in range(per_request):
            pool = served if served and rng.random() < 0.6 else list(listing.stamps)
            listing.update(rng.choice(pool))

    listing.after = churn


def one_run(
    listing: Listing, since: str, top: int, earlier: set[str]
) -> tuple[list[str], str]:
    """One walk, checking after every page that every record below the watermark
    has been yielded (by it, or by an earlier run: a record exactly at the run's
    ``since`` was listed by the run that left that watermark), and at the end that
    what it left out is the next run's."""
    yielded: list[str] = []
    began = max(listing.stamps.values())
    since_ns = timestamps.parse(since)
    assert since_ns is not None
    bound = since
    for rows, bound in walk(listing.fetch, since=since, top=top):
        yielded += [r.key for r in rows]
        bound_ns = timestamps.parse(bound)
        assert bound_ns is not None
        below = {k for k, t in listing.stamps.items() if since_ns <= t < bound_ns}
        assert below <= set(yielded) | earlier, "a record below the watermark was never yielded"
    assert len(yielded) == len(set(yielded)), "a record was yielded twice"
    final = timestamps.parse(bound)
    assert final is not None
    left = {k for k, t in listing.stamps.items() if t >= since_ns} - set(yielded) - earlier
    assert all(listing.stamps[k] >= final and listing.stamps[k] > began for k in left), (
        "a record left out is below the watermark or was not updated during the run"
    )
    return yielded, bound


@pytest.mark.parametrize("inclusive", [True, False], ids=["inclusive", "exclusive"])
@pytest.mark.parametrize("seed", range(25))
def test_every_record_once_per_run_and_none_missed_across_runs(seed: int, inclusive: bool) -> None:
    rng = random.Random(seed)
    listing = Listing(seeded(rng, 400), inclusive=inclusive)
    hostile(listing, rng, per_request=rng.choice((1, 3, 6)))
    top = rng.choice((2, 3, 7, 20, 50))
    since = timestamps.format_ms(T0 - 1000 * MS)
    listed: set[str] = set()
    for _ in range(3):  # runs while the tenant keeps changing
        yielded, since = one_run(listing, since, top, listed)
        listed.update(yielded)
    listing.after = lambda served: None  # then a run on a quiet tenant
    yielded, since = one_run(listing, since, top, listed)
    listed.update(yielded)
    assert listed == set(listing.stamps), "a record was never listed by any run"


def naive(listing: Listing, since: str, top: int) -> list[str]:
    got: list[str] = []
    skip = 0
    while True:
        rows, _ = listing.fetch(since, skip, top)
        got += [r.key for r in rows]
        if len(rows) < top:
            return got
        skip += len(rows)


def test_plain_offset_paging_breaks_under_the_same_churn() -> None:
    broken = 0
    for seed in range(10):
        rng = random.Random(seed)
        listing = Listing(seeded(rng, 400))
        hostile(listing, rng, per_request=3)
        got = naive(listing, timestamps.format_ms(T0 - MS), 20)
        broken += len(got) != len(set(got)) or set(got) != set(listing.stamps)
    assert broken == 10


def test_a_record_tying_in_before_the_sentinel_restarts_the_page() -> None:
    # Case 4: a record joins at the sentinel's own millisecond and sorts before it.
    t = T0
    listing = Listing({"a": t, "b": t, "d": t, "z": t + MS})
    joined = False

    def join(served: list[str]) -> None:
        nonlocal joined
        if not joined:
            joined = True
            listing.stamps["c"] = t  # sorts between b and d, before the sentinel d

    listing.after = join
    stats = paging.Stats()
    got = [r.key for rows, _ in walk(listing.fetch, since=timestamps.format_ms(t), top=3,
                                     stats=stats) for r in rows]
    assert sorted(got) == ["a", "b", "c", "d", "z"]
    assert stats.restarts == 1


def test_an_answer_out_of_order_is_refused() -> None:
    def fetch(bound: str, skip: int, top: int) -> tuple[list[Row], None]:
        return [Row("a", T0 + 2 * MS, None), Row("b", T0 + MS, None)], None

    with pytest.raises(TerminalApiError, match="out of order"):
        list(walk(fetch, since=timestamps.format_ms(T0), top=5))


def test_an_answer_ignoring_updated_since_is_refused() -> None:
    def fetch(bound: str, skip: int, top: int) -> tuple[list[Row], None]:
        return [Row("a", T0 - 5 * MS, None)], None

    with pytest.raises(TerminalApiError, match="below updatedSince"):
        list(walk(fetch, since=timestamps.format_ms(T0), top=5))


def test_an_api_that_ignores_skip_is_given_up_on() -> None:
    # Every answer is the first page: the sentinel is never where it should be, and a
    # restart brings nothing new. The walk stops instead of asking forever.
    listing = Listing({f"c{i:02d}": T0 for i in range(50)})

    def fetch(bound: str, skip: int, top: int) -> tuple[list[Row], int | None]:
        return listing.fetch(bound, 0, top)

    with pytest.raises(TransientApiError, match="kept changing"):
        list(walk(fetch, since=timestamps.format_ms(T0), top=10))
    assert listing.requests <= 4 * (paging.MAX_STALLS + 2)


def test_without_rebase_removals_shift_nothing_past_the_walk() -> None:
    # A calling list's attempts have no update time: the bound stays, and what
    # changes a listing is prospects leaving it (another run retiring them).
    listing = Listing({f"c{i:03d}": T0 for i in range(120)})
    rng = random.Random(3)

    def remove(served: list[str]) -> None:
        for key in rng.sample(served, min(2, len(served))):
            del listing.stamps[key]

    listing.after = remove
    seen: list[str] = []
    bounds = set()
    stats = paging.Stats()
    for rows, bound in walk(listing.fetch, since="", top=7, rebase=False, stats=stats):
        seen += [r.key for r in rows]
        bounds.add(bound)
    assert bounds == {""}
    assert len(seen) == len(set(seen))
    assert set(listing.stamps) <= set(seen), "a record still on the list was never listed"
    assert stats.restarts > 0


def test_the_bound_never_passes_the_server_time_whatever_is_stamped() -> None:
    stamps = {f"c{i}": T0 + i * 1000 * MS for i in range(5)}
    stamps["future"] = timestamps.parse("9999-12-31T00:00:00Z") or 0
    server = T0 + 10_000 * MS  # lastPollTime

    def fetch(bound: str, skip: int, top: int) -> tuple[list[Row], int | None]:
        bound_ns = timestamps.parse(bound) or 0
        keep = sorted((t, k) for k, t in stamps.items() if t >= bound_ns)[skip: skip + top]
        return [Row(k, t, None) for t, k in keep], server

    def last_bound() -> str:
        pages = list(walk(fetch, since=timestamps.format_ms(T0 - MS), top=10))
        assert sorted(r.key for rows, _ in pages for r in rows) == sorted(stamps)
        return pages[-1][1]

    # A record stamped in 9999 is listed; the bound stops below the server's time.
    assert last_bound() == timestamps.format_ms(server - MS)
    # A lastPollTime that lags the records holds the bound back: the next run lists
    # the later records again (the store knows them), none is skipped.
    del stamps["future"]
    server = T0 + 2000 * MS
    assert last_bound() == timestamps.format_ms(server - MS)


@pytest.mark.parametrize("poll_ms", [-5000, 12_500], ids=["behind-every-record", "in-page-two"])
def test_a_lastpolltime_behind_the_listing_does_not_hold_every_run_at_one_page(
    poll_ms: int,
) -> None:
    """lastPollTime stays behind records the tenant serves (fixed at T0 + poll_ms, with
    a record a second from T0 on): each walk used to end after its first page with the
    bound held below lastPollTime, so every run listed that page again and none got
    past it. Runs now reach every record, and the bound still never passes it."""
    stamps = {f"c{i:02d}": T0 + i * 1000 * MS for i in range(40)}
    server = T0 + poll_ms * MS

    def fetch(bound: str, skip: int, top: int) -> tuple[list[Row], int | None]:
        bound_ns = timestamps.parse(bound) or 0
        keep = sorted((t, k) for k, t in stamps.items() if t >= bound_ns)[skip: skip + top]
        return [Row(k, t, None) for t, k in keep], server

    since = timestamps.format_ms(T0 - 60_000 * MS)
    listed: list[str] = []
    for _ in range(3):  # three runs, each from the last one's watermark
        pages = list(walk(fetch, since=since, top=10))
        listed += [r.key for rows, _ in pages for r in rows]
        since = pages[-1][1]
    assert set(listed) == set(stamps)
    assert (timestamps.parse(since) or 0) < server


def test_a_far_future_stamp_ending_a_page_cannot_lift_the_bound_over_what_follows() -> None:
    """A server whose order contradicts its stamps: the tenth record, ending the first
    full page, is stamped in 9999, and twenty records stamped before the server's time
    come after it. The bound used to jump to the server's time after that page, so
    the next queries' updatedSince filtered the twenty out: never listed, and the
    watermark past them. The walk now lists them or refuses the order; no bound it
    hands out passes a record it did not list."""
    far = timestamps.parse("9999-12-31T00:00:00Z") or 0
    order = [f"c{i:02d}" for i in range(30)]
    stamps = {k: T0 + i * 1000 * MS for i, k in enumerate(order)}
    stamps["c09"] = far
    server = T0 + 60_000 * MS  # lastPollTime: after every honest stamp

    def fetch(bound: str, skip: int, top: int) -> tuple[list[Row], int | None]:
        bound_ns = timestamps.parse(bound) or 0
        keep = [k for k in order if stamps[k] >= bound_ns][skip: skip + top]
        return [Row(k, stamps[k], None) for k in keep], server

    listed: set[str] = set()
    bounds: list[int] = []
    with pytest.raises(TerminalApiError, match="out of order"):
        for rows, bound in walk(fetch, since=timestamps.format_ms(T0 - MS), top=10):
            listed |= {r.key for r in rows}
            bounds.append(timestamps.parse(bound) or 0)
    missed = [k for k in order if k not in listed]
    assert missed, "the order check should have stopped the walk before the end"
    assert max(bounds) < min(stamps[k] for k in missed)

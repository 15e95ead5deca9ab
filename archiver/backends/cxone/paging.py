"""Paging a listing that changes while it is read, without missing or repeating a record.

``GET contacts/completed`` is paged with ``updatedSince`` (a bound), ``orderBy=
lastUpdateTime asc``, ``skip`` and ``top``. Records are updated while a run pages:
an updated record gets a new ``lastUpdateTime`` and moves to the end of the order,
so every offset after its old place shifts by one. Plain ``skip`` paging then
skips an unseen record (one ahead of it moved away) or repeats one.

How :func:`walk` pages
    * The *bound* starts at ``since``. After every page it moves to the last
      record's ``lastUpdateTime`` floored to the millisecond, minus one millisecond.
      Everything before the bound has been listed (below), so the next query starts
      there with a small ``skip`` instead of an offset into the whole listing.
    * The *prefix* is the run of records received, in order, from offset 0 under
      the current bound. The next request skips ``len(prefix) - 1``: it asks again
      for the prefix's last record (the *anchor*) and expects it first.
    * If the answer does not start with the anchor, something at or before it
      changed. The answer is dropped and asked for again with a wider overlap (the
      last 4, 16, ... prefix records), until it holds a prefix record still in place:
      the same contactId and ``lastUpdateTime``, only records already seen before it,
      and not pushed down (a record new to the walk could then sit before ``skip``).
      Every row after it is new ground. At offset 0 nothing needs anchoring.
    * Every record is yielded the first time its contactId is seen in this walk.
    * A page shorter than ``top`` (or a 204 with an empty prefix) ends the walk; with
      ``rebase`` off only one that brings no new record does (a short page is not
      taken for the end: an API may cap ``top`` below what was asked).
    * So does the first record updated after the walk began (later than the first
      answer's ``lastPollTime``, the server's clock): records updated while the walk
      runs would otherwise keep joining the end faster than a busy tenant's listing
      can be read. They are at or after the final watermark: the next run lists them.
    * The bound never passes the first answer's ``lastPollTime`` (less a millisecond):
      a record stamped later (a bad value, a clock gone wrong) is listed, but the
      watermark does not jump past everything the tenant completes until then. Only
      the server's clock counts: a local clock ahead of the tenant's would carry the
      bound past records the tenant has yet to complete, never to be listed; a
      lastPollTime that lags only makes the next run list some records again (the
      store knows them). Where A2 holds the cap never binds. A lastPollTime that
      leaves the bound no room above the walk's start would hold every run at the
      same first page: it ends no walk, which then reads to the last page.
    * Within a walk the bound follows only records stamped at or below that cap; it
      rises to the cap only when the walk ends. A record stamped later at the end of
      a full page would otherwise lift the next query's ``updatedSince`` over the
      records the server serves after it: in an answer whose order contradicts its
      stamps they would be filtered out unseen, never listed, where under the lower
      bound they come back and the order check refuses the listing.

Assumptions (unverified against a live tenant; see ``archiver.backends.cxone``)
    A1. ``updatedSince`` keeps records at or after it. (Exclusive would also do: the
        bound sits one millisecond below the last time listed, so records exactly
        on it were listed already; the count of them the prefix holds is corrected
        by re-anchoring. Only a first run's ``since`` would lose records exactly on it.)
    A2. An update stamps the server's current time, never earlier than a
        ``lastUpdateTime`` the listing has already served.
    A3. Records sharing a ``lastUpdateTime`` keep their relative order between
        requests.

Invariant: after each accepted page, every record whose current ``lastUpdateTime``
is below the bound has been yielded. A record below the new bound is below the last
time listed; by A2 it has not changed since that page was served, so it stood
before the page's last record in that answer: in the answer itself, or before the
anchor, where by A2 and A3 only records the walk had received can stand (the
anchor's place shows none left, and none joined, since the previous page).

Shift cases between two requests, and what happens
    1. An unseen record after the anchor is updated: it leaves a place the walk has
       not reached and joins the end, where the walk reaches it. Listed once.
    2. A listed record before the anchor is updated: the anchor moves up one place;
       the answer does not start with it; the wider overlap finds it (or an earlier
       prefix record) moved up, which only removals do, and the walk goes on from
       there. The moved record comes back at the end and is dropped as a repeat.
    3. The anchor itself is updated: the wider overlap anchors on an earlier prefix
       record; the old anchor comes back at the end, dropped.
    4. A record joins at the anchor's exact time and sorts before it (a tie at the
       newest millisecond, which A2 excludes): it is in the answer before the anchor
       and ends the scan as new ground, or it pushed the anchor down; either way it
       is listed, at worst from offset 0.
    5. A record joins after the anchor: reached in order.
    6. Several of the above at once: any net push down is caught. The one
       combination no check sees is 2 and 4 in the same interval ahead of the
       overlap (one record leaves as another ties in, both before ``skip``): two
       updates within the anchor's millisecond, the second sorting before it. A2
       rules it out where the API stamps strictly increasing times.
    7. A record is updated after the walk read its last page, or after the walk
       began and the walk stops before reaching it: it is at or after the final
       watermark, so the next run lists it.

The watermark handed to the engine is the bound: every record before it has been
decided once the page is. The next run lists from it and meets again the records
between the bound and the last time listed; the state store knows their ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from archiver.backends.cxone import timestamps
from archiver.errors import TerminalApiError, TransientApiError

# Answers dropped in a row without a new record or a higher bound before the walk
# gives up: the listing changes faster than it can be read, or ignores ``skip``.
MAX_STALLS = 100


@dataclass(frozen=True, slots=True)
class Row:
    """One listed record as paging sees it."""

    key: str  # its identity (the contactId as text)
    at: int | None  # its lastUpdateTime in ns; None when the record has none usable
    raw: object


# (bound, skip, top) -> the rows of that page in the server's order ([] for 204), and
# the server's time of the answer in ns (``lastPollTime``) when it says.
Fetch = Callable[[str, int, int], tuple[Sequence[Row], int | None]]


@dataclass(slots=True)
class Stats:
    """What a walk did, for logs and tests."""

    requests: int = 0
    restarts: int = 0
    repeats: int = 0  # records received again and dropped


def walk(
    fetch: Fetch,
    *,
    since: str,
    top: int,
    rebase: bool = True,
    stats: Stats | None = None,
    what: str = "listing",
) -> Iterator[tuple[list[Row], str]]:
    """New rows page by page, each with the bound a later run may start from.

    With ``rebase`` off (a listing without update times) the bound stays ``since``
    and only the anchoring and the deduplication apply.
    """
    if top < 2:
        raise ValueError("top must leave room for the anchor and one new record")
    stats = stats if stats is not None else Stats()
    bound = since
    bound_ns = _parse_bound(since) if rebase else 0
    prefix: list[Row] = []
    seen: set[str] = set()
    stalls = 0
    window = 1  # how many prefix rows the next request asks for again
    until: int | None = None  # the walk's end: the server's time when it began
    # The highest bound: below the server's time when the walk began. A record stamped
    # later (a clock gone wrong, a bad value) is listed, but never carries the
    # watermark past records the tenant has yet to write.
    ceiling: int | None = None
    while True:
        skip = max(0, len(prefix) - window)
        answer, server_time = fetch(bound, skip, top)
        rows = list(answer)
        stats.requests += 1
        if rebase and ceiling is None and server_time is not None:
            ceiling = timestamps.floor_ms(server_time) - timestamps.MILLISECOND_NS
            # A server time at or below the walk's start cannot move the watermark: a
            # walk that ended at it would leave the next run where this one began, to
            # list the same first page again, run after run. Such a walk reads on.
            if ceiling > bound_ns:
                # Never below the first answer's records: the first page is always taken.
                until = max([server_time, *(r.at for r in rows if r.at is not None)])
        anchor = _anchor(prefix, skip, rows, seen) if skip else -1
        if anchor is None:
            stats.restarts += 1
            stalls = _stalled(stalls, stats, what)
            window = min(len(prefix), window * 4)
            continue
        # From offset 0 (anchor -1) nothing is taken on trust: every row is new ground.
        prefix = prefix[:skip] + rows[: anchor + 1]
        fresh = rows[anchor + 1 :]
        window = 1 if skip == 0 else max(1, window // 2)
        done = len(rows) < top
        if rebase:
            _check_order(prefix, fresh, bound_ns, what)
            if until is not None:
                kept = _until(prefix, fresh, until, bound_ns)
                done = done or len(kept) < len(fresh)
                fresh = kept
        prefix.extend(fresh)
        new: list[Row] = []
        for row in fresh:
            if row.key not in seen:  # also a second copy within this one answer
                seen.add(row.key)
                new.append(row)
        stats.repeats += len(fresh) - len(new)
        if not rebase and new:
            # Without update times there is no count to trust, and a calling list may
            # answer fewer than `top` asks before its end: only an answer with nothing
            # new ends the walk (one more request, which brings the anchor alone).
            done = False
        progressed = bool(new) or (skip > 0 and bool(fresh))
        if rebase and prefix:
            last = _ordering(prefix, len(prefix) - 1, bound_ns)
            if ceiling is not None and last > ceiling and not done:
                # Stamped after the cap (a bad value): the next query goes on from the
                # last record stamped below it, so whatever the server serves after
                # this one is still at or above updatedSince, where an order that
                # contradicts the stamps is seen and refused instead of lost unseen.
                last = _settled(prefix, ceiling, bound_ns)
            candidate = timestamps.floor_ms(last) - timestamps.MILLISECOND_NS
            if ceiling is not None:
                candidate = min(candidate, ceiling)
            if candidate > bound_ns:
                prefix = _from(prefix, candidate, bound_ns)
                bound_ns, bound = candidate, timestamps.format_ms(candidate)
                progressed = True
        stalls = 0 if progressed else _stalled(stalls, stats, what)
        yield new, bound
        if done:
            return


def _stalled(stalls: int, stats: Stats, what: str) -> int:
    if stalls >= MAX_STALLS:
        raise TransientApiError(
            f"{what} kept changing under every page ({stats.restarts} restarts); "
            "a later run goes on from the last watermark"
        )
    return stalls + 1


def _identity(row: Row) -> tuple[str, int | None]:
    return row.key, row.at


def _anchor(prefix: Sequence[Row], skip: int, rows: Sequence[Row], seen: set[str]) -> int | None:
    """Where in ``rows`` (asked for from ``skip``) the walk stands: the index of the last
    row that is still the prefix row it was, with only seen rows before it and not
    pushed down (something new ahead of it could sit before ``skip``). None: no such row.
    """
    position = {_identity(prefix[i]): i for i in range(skip, len(prefix))}
    found: int | None = None
    for j, row in enumerate(rows):
        if row.key not in seen:
            break  # rows from here on are new to the walk
        k = position.get(_identity(row))
        if k is not None:
            if skip + j > k:
                return None  # pushed down: something joined ahead of it
            found = j
    return found


def _ordering(rows: Sequence[Row], index: int, floor: int) -> int:
    """The time a row sorts at: its own, else the nearest earlier row's (it sorted
    after that one), else the bound."""
    for row in reversed(rows[: index + 1]):
        if row.at is not None:
            return row.at
    return floor


def _settled(rows: Sequence[Row], ceiling: int, floor: int) -> int:
    """The latest time a row of ``rows`` sorts at that is at or below ``ceiling``
    (``floor`` when none is)."""
    settled = floor
    at = floor
    for row in rows:
        at = row.at if row.at is not None else at
        if at > ceiling:
            break
        settled = at
    return settled


def _until(prefix: Sequence[Row], fresh: Sequence[Row], until: int, bound: int) -> list[Row]:
    """The fresh rows that sort no later than ``until`` (a prefix of them: they are in order)."""
    at = _ordering(prefix, len(prefix) - 1, bound) if prefix else bound
    kept: list[Row] = []
    for row in fresh:
        at = row.at if row.at is not None else at
        if at > until:
            break
        kept.append(row)
    return kept


def _from(prefix: Sequence[Row], new_bound: int, old_bound: int) -> list[Row]:
    """The prefix's rows that sort at or after ``new_bound`` (a suffix: the prefix is in order)."""
    kept: list[Row] = []
    at = old_bound
    for row in prefix:
        at = row.at if row.at is not None else at
        if at >= new_bound:
            kept.append(row)
    return kept


def _check_order(prefix: Sequence[Row], fresh: Sequence[Row], bound_ns: int, what: str) -> None:
    # The invariant rests on the order and the filter; an API that ignores either
    # is refused rather than paged into silent gaps.
    previous = _ordering(prefix, len(prefix) - 1, bound_ns) if prefix else bound_ns
    for row in fresh:
        if row.at is None:
            continue
        if row.at < previous:
            problem = "below updatedSince" if row.at < bound_ns else "out of order"
            raise TerminalApiError(
                f"{what}: record {row.key} has a lastUpdateTime {problem}; "
                "the API did not apply updatedSince/orderBy, so it cannot be paged safely"
            )
        previous = row.at


def _parse_bound(since: str) -> int:
    ns = timestamps.parse(since)
    if ns is None:
        raise ValueError(f"not a UTC timestamp: {since!r}")
    return ns

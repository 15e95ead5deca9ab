"""A server that refuses a share of calls at random, whatever the rate (a busy shared
gateway), against one whose 429s come from a rate limit.

Before, every 429 cut the rate again, each time to the few successes counted since the
last cut, and a share of a few percent of random 429s sank the rate to its floor (half
a request a second against a 20/s ceiling): the run crawled. The limiter now undoes
cuts that leave the share of 429s as it was, and a real limit is still followed.
"""

from __future__ import annotations

import pytest

from archiver.cxone import RateLimiter
from archiver.cxone.ratelimit import DECREASE_HOLD_SECONDS

from .limiter_model import FakeClock, Result, run

CEILING = 20.0
NO_LIMIT = 1e6  # the model's tenant with no rate limit of its own


def refused_one_in(lim: RateLimiter, clock: FakeClock, tries: int, seconds: float) -> None:
    """After a cut's hold, ``tries - 1`` successes then a 429, over ``seconds``."""
    clock.now += DECREASE_HOLD_SECONDS
    for _ in range(tries - 1):
        clock.now += seconds / tries
        lim.on_success()
    clock.now += seconds / tries
    lim.on_throttled()


def test_cuts_that_leave_the_share_of_429s_as_it_was_are_undone() -> None:
    clock = FakeClock()
    lim = RateLimiter(CEILING, clock=clock, sleep=clock.sleep)
    for _ in range(9):  # one call in ten refused, at full speed ...
        clock.now += 0.05
        lim.on_success()
    clock.now += 0.05
    lim.on_throttled()
    first = lim.current_rate
    assert first < CEILING / 2  # the first 429 is taken for a limit, as before
    refused_one_in(lim, clock, 10, 10 / first)  # ... and at the lower rate
    assert lim.current_rate < first
    refused_one_in(lim, clock, 10, 10 / lim.current_rate)  # ... and lower still
    assert lim.current_rate == CEILING, "two cuts did not lower the share: undone"
    for _ in range(20):  # one in ten goes on being refused: no cut any more
        refused_one_in(lim, clock, 10, 0.5)
        assert lim.current_rate == CEILING


def test_a_limit_whose_429s_stop_after_the_cuts_is_kept() -> None:
    clock = FakeClock()
    lim = RateLimiter(CEILING, clock=clock, sleep=clock.sleep)
    for _ in range(30):
        clock.now += 0.025
        lim.on_success()
    lim.on_throttled()
    refused_one_in(lim, clock, 10, 10 / lim.current_rate)
    cut = lim.current_rate
    # Under the limit now: no 429 for many tries, then one as the rate creeps over it.
    refused_one_in(lim, clock, 200, 200 / cut)
    assert lim.current_rate < cut


def mean_rate(result: Result, since: float) -> float:
    """The limiter's rate averaged over the run's time from ``since`` to its end."""
    total = span = 0.0
    for (t0, rate), (t1, _) in zip(result.rates, result.rates[1:], strict=False):
        if t1 > since:
            start = max(t0, since)
            total += rate * (t1 - start)
            span += t1 - start
    return total / span


@pytest.mark.parametrize("retry_after", [False, True], ids=["no-retry-after", "retry-after"])
@pytest.mark.parametrize("share", [0.05, 0.10, 0.20])
def test_random_429s_leave_the_rate_near_the_ceiling(retry_after: bool, share: float) -> None:
    """8 threads, a tenant that refuses ``share`` of calls at random and has no limit of
    its own: after the first 10 s the rate stays near the ceiling (before: at its floor,
    0.5/s, from about the fifth 429 on, for the rest of the run)."""
    results = [
        run(
            ceiling=CEILING,
            limit=NO_LIMIT,
            requests=600,
            retry_after=retry_after,
            refuse_share=share,
            seed=seed,
        )
        for seed in range(1, 6)
    ]
    means = sorted(mean_rate(r, since=10.0) for r in results)
    assert means[2] >= 0.9 * CEILING, means  # the median run
    assert means[0] >= 0.7 * CEILING, means  # and the worst
    if not retry_after:  # (a 1 s pause at every 429 sets the pace otherwise)
        assert min(r.useful_per_second for r in results) >= 0.5 * (1 - share) * CEILING


def test_a_limit_behind_random_429s_is_still_found() -> None:
    """A 10/s tenant behind a gateway that refuses 5 % of calls at random, a 40/s
    ceiling: the rate settles near the limit, neither at the ceiling nor at the floor."""
    share = 0.05
    for seed in range(1, 4):
        result = run(
            ceiling=40.0,
            limit=10.0,
            requests=800,
            retry_after=False,
            refuse_share=share,
            seed=seed,
        )
        assert 8.0 <= mean_rate(result, since=result.finished_at / 2) <= 15.0
        assert result.useful_per_second >= 0.8 * (1 - share) * 10.0

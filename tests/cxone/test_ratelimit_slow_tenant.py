"""A tenant far slower than the policy's ceiling (4 requests/s against 200): the limiter
comes down to it within the first 429s, and no call runs out of tries.

Before, a 429 was cut by a fixed factor whenever fewer than MIN_EVIDENCE successes
were counted, which a tenant slower than that many a second never gives: a step every
quarter second, seconds of 429s; and the rate could not go below 5 % of the ceiling
(10/s here), so the 429s never ended. The cxone 429-storm run failed a campaign when
one listing call met 8 of them in a row (its policy's retry.max_attempts).
"""

from __future__ import annotations

import pytest

from archiver.cxone import RateLimiter
from archiver.cxone.ratelimit import FLOOR_MAX, MARGIN

from .limiter_model import FakeClock, run

MAX_ATTEMPTS = 8  # the storm test's policy


@pytest.mark.parametrize("seed", range(1, 11))
def test_a_ceiling_fifty_times_the_tenants_limit_comes_down_without_a_storm(seed: int) -> None:
    # The cxone storm test's run: 3 calls in flight, a 4/s tenant answering 429 without
    # Retry-After, the policy's quick backoff (0.02 s doubling, at most 0.3 s).
    result = run(ceiling=200.0, limit=4.0, requests=60, retry_after=False, workers=3,
                 latency=0.01, initial_backoff=0.02, max_backoff=0.3, seed=seed)
    assert result.most_tries < MAX_ATTEMPTS - 2, "no call near the end of its tries"
    assert result.share_429 < 0.1
    assert result.rates[-1][1] < 5.0, "the rate followed the tenant down"
    assert result.useful_per_second >= 0.9 * 4.0


def test_a_handful_of_successes_among_many_quick_tries_is_the_tenants_measure() -> None:
    clock = FakeClock()
    lim = RateLimiter(200.0, clock=clock, sleep=clock.sleep)
    for _ in range(4):  # the tenant's burst goes through ...
        clock.now += 0.001
        lim.acquire()
        lim.on_success()
    for _ in range(3):  # ... the next tries are refused, within the quarter second
        clock.now += 0.002
        lim.on_throttled()
    # The first 429 came fifth of 5 tries in 6 ms: 4 went through in about a second (a
    # second's burst assumed before any cut), not the 140/s a fixed factor would leave.
    assert lim.current_rate == pytest.approx(MARGIN * 4 / (0.006 + 1.0))


def test_the_floor_is_at_most_half_a_request_a_second() -> None:
    assert RateLimiter(200.0).floor == FLOOR_MAX == 0.5
    assert RateLimiter(4.0).floor == pytest.approx(0.2)  # 5 % of a low ceiling

from __future__ import annotations

import threading
import time
from collections import deque

import pytest

from archiver.cxone import RateLimiter
from archiver.cxone.ratelimit import PROBE_HOLD_SECONDS

from .limiter_model import FakeClock, run


def limiter(clock: FakeClock, rate: float = 10.0, **kw: object) -> RateLimiter:
    return RateLimiter(rate, clock=clock, sleep=clock.sleep, **kw)  # type: ignore[arg-type]


def test_acquire_spaces_requests_at_the_rate() -> None:
    clock = FakeClock()
    lim = limiter(clock, 10.0, adaptive=False, burst=1.0)
    times = []
    for _ in range(5):
        lim.acquire()
        times.append(clock.now)
    assert times == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_burst_goes_at_once_then_the_rate_applies() -> None:
    clock = FakeClock()
    lim = limiter(clock, 10.0, burst=3.0)
    for _ in range(3):
        lim.acquire()
    assert clock.now == 0.0
    lim.acquire()
    assert clock.now == pytest.approx(0.1)


@pytest.mark.parametrize(("rate", "burst"), [(1.0, 1.0), (10.0, 2.5), (1000.0, 5.0)])
def test_default_burst_is_small(rate: float, burst: float) -> None:
    assert RateLimiter(rate).burst == burst


def succeed(lim: RateLimiter, clock: FakeClock, count: int, seconds: float) -> None:
    """``count`` successes spread evenly over the next ``seconds``."""
    for _ in range(count):
        clock.now += seconds / count
        lim.on_success()


def test_first_429_cuts_to_what_the_tenant_accepted_counting_a_second_of_burst() -> None:
    clock = FakeClock()
    lim = limiter(clock, 40.0)
    succeed(lim, clock, 35, 0.75)  # a 20/s tenant with 20 saved up lets 35 through in 0.75 s
    lim.on_throttled()
    assert lim.current_rate == pytest.approx(0.95 * 35 / 1.75)  # 19/s, not 40 * 0.7 = 28


def test_later_429s_cut_to_the_successes_counted_since_the_last_cut() -> None:
    clock = FakeClock()
    lim = limiter(clock, 100.0)
    succeed(lim, clock, 50, 1.0)
    lim.on_throttled()  # 0.95 * 50 / 2 = 23.75
    succeed(lim, clock, 10, 0.5)  # the tenant accepts 20/s
    lim.on_throttled()
    assert lim.current_rate == pytest.approx(0.95 * 20)
    # Long after a cut only the last second counts.
    clock.now += 30.0
    succeed(lim, clock, 15, 1.0)
    lim.on_throttled()
    assert lim.current_rate == pytest.approx(0.95 * 15)


def test_429s_within_the_hold_are_the_same_overload_and_every_cut_lowers_the_rate() -> None:
    clock = FakeClock()
    lim = limiter(clock, 40.0)
    succeed(lim, clock, 35, 0.75)
    lim.on_throttled()
    cut = lim.current_rate
    clock.now += 0.1  # requests that were already in flight
    lim.on_throttled()
    assert lim.current_rate == cut
    # The tenant accepted more than the rate since: a 429 still cuts, a little.
    succeed(lim, clock, 30, 1.0)
    lim.on_throttled()
    assert lim.current_rate == pytest.approx(cut * 0.95)


def test_a_cut_never_goes_below_the_floor() -> None:
    clock = FakeClock()
    lim = limiter(clock, 10.0)
    for _ in range(20):
        clock.now += 1.0
        lim.on_throttled()  # nothing accepted at all
    assert lim.current_rate == pytest.approx(0.5)  # floor: 5 % of the ceiling


def test_too_few_successes_to_tell_cut_by_a_fixed_factor() -> None:
    """A run all but idle before its 429 says nothing of the tenant's rate: it must not
    fall to the one request a second it happened to send."""
    clock = FakeClock()
    lim = limiter(clock, 40.0)
    succeed(lim, clock, 4, 1.0)
    lim.on_throttled()
    assert lim.current_rate == pytest.approx(40.0 * 0.7)


def test_the_first_cut_reads_the_last_second_not_the_whole_run() -> None:
    clock = FakeClock()
    lim = limiter(clock, 40.0)
    succeed(lim, clock, 100, 60.0)  # a long quiet listing: under 2 a second
    clock.now += 1.5
    succeed(lim, clock, 30, 1.0)  # then archiving picks up
    lim.on_throttled()
    assert lim.current_rate == pytest.approx(0.95 * 30 / 2)


def test_retry_after_pauses_everyone_and_cuts_to_a_little_over_the_accepted_rate() -> None:
    clock = FakeClock()
    lim = limiter(clock, 40.0, burst=1.0)
    succeed(lim, clock, 35, 0.75)
    lim.on_throttled(1.0)
    # The tenant refills while everyone waits: the run spends that, not only its rate.
    assert lim.current_rate == pytest.approx(1.05 * 35 / 1.75)
    start = clock.now
    lim.acquire()
    assert clock.now == pytest.approx(start + 1.0)


def test_no_probing_up_during_the_hold_then_a_gentle_two_percent_a_second() -> None:
    clock = FakeClock()
    lim = limiter(clock, 40.0)
    succeed(lim, clock, 20, 1.0)
    lim.on_throttled()  # 0.95 * 20 / 2 = 9.5
    cut = lim.current_rate
    succeed(lim, clock, 40, PROBE_HOLD_SECONDS - 0.01)
    assert lim.current_rate == cut
    clock.now += 0.01
    lim.on_success()
    rate = lim.current_rate
    succeed(lim, clock, 10, 1.0)
    assert lim.current_rate == pytest.approx(rate * 1.002**10)
    clock.now += 100.0  # a long idle gap counts as one second at most
    lim.on_success()
    assert lim.current_rate == pytest.approx(rate * 1.002**10 * 1.02)
    for _ in range(200):
        clock.now += 1.0
        lim.on_success()
    assert lim.current_rate == 40.0  # never above the ceiling


def test_not_adaptive_keeps_the_ceiling() -> None:
    clock = FakeClock()
    lim = limiter(clock, 10.0, adaptive=False)
    lim.on_throttled()
    clock.now += 5
    lim.on_throttled()
    assert lim.current_rate == 10.0


def test_a_cut_rate_slows_acquire_down() -> None:
    clock = FakeClock()
    lim = limiter(clock, 10.0, burst=1.0)
    lim.acquire()
    succeed(lim, clock, 14, 1.0)
    lim.on_throttled()  # 0.95 * 14 / 2 = 6.65/s
    lim.acquire()  # the token saved up meanwhile
    start = clock.now
    lim.acquire()
    lim.acquire()
    assert clock.now - start == pytest.approx(2 / 6.65)


def test_pause_holds_everyone_until_the_deadline_then_releases_one_at_a_time() -> None:
    clock = FakeClock()
    lim = limiter(clock, 10.0, burst=5.0)
    lim.pause(2.0)
    lim.acquire()
    assert clock.now == pytest.approx(2.0)
    lim.acquire()  # no burst saved up during the pause
    assert clock.now == pytest.approx(2.1)


def test_pause_keeps_the_later_deadline() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    lim.pause(3.0)
    lim.pause(1.0)
    lim.acquire()
    assert clock.now == pytest.approx(3.0)


def test_aimd_converges_below_a_tenant_limit_lower_than_the_ceiling() -> None:
    """Simulated tenant that allows 6 requests per rolling second; the policy claims 20."""
    clock = FakeClock()
    lim = limiter(clock, 20.0)
    window: deque[float] = deque()
    outcomes: list[tuple[float, bool]] = []
    while clock.now < 120.0:
        lim.acquire()
        while window and window[0] <= clock.now - 1.0:
            window.popleft()
        accepted = len(window) < 6
        if accepted:
            window.append(clock.now)
            lim.on_success()
        else:
            lim.on_throttled()
        outcomes.append((clock.now, accepted))
    late = [ok for t, ok in outcomes if t >= 60.0]
    throttled_share = late.count(False) / len(late)
    accepted_rate = late.count(True) / 60.0
    assert lim.current_rate < 12.0
    assert throttled_share < 0.15  # without adapting it would be about 70 %
    assert accepted_rate > 3.5  # and it still uses most of what the tenant allows


@pytest.mark.parametrize("retry_after", [True, False], ids=["retry-after", "no-retry-after"])
@pytest.mark.parametrize("ceiling", [20.0, 40.0, 200.0])
@pytest.mark.parametrize("requests", [175, 2000])
def test_a_run_against_a_20_per_second_tenant_keeps_429s_rare_and_the_rate_high(
    retry_after: bool, ceiling: float, requests: int
) -> None:
    """The benchmark's scenario (b) on a fake clock: 8 threads, a tenant with a
    20/s token bucket, the policy's ceiling at, twice and ten times the limit,
    175 requests (the benchmark's run) and 2,000 (a long one)."""
    result = run(ceiling=ceiling, limit=20.0, requests=requests, retry_after=retry_after)
    assert result.done == requests
    assert result.share_429 < 0.02
    assert result.useful_per_second >= 0.9 * 20.0


@pytest.mark.parametrize("retry_after", [True, False], ids=["retry-after", "no-retry-after"])
def test_a_slow_tenant_far_below_the_ceiling_is_followed_with_many_calls_in_flight(
    retry_after: bool,
) -> None:
    result = run(
        ceiling=50.0, limit=5.0, requests=600, retry_after=retry_after, workers=16, latency=0.2
    )
    assert result.share_429 < 0.05  # most are the 16 already in flight when the first came
    assert result.useful_per_second >= 0.9 * 5.0


def test_rejects_non_positive_rate() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_threads_share_one_ceiling() -> None:
    lim = RateLimiter(50.0, adaptive=False, burst=1.0)

    def worker() -> None:
        for _ in range(5):
            lim.acquire()

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 20 acquisitions at 50/s with one token saved: at least 19 intervals of 20 ms.
    assert time.monotonic() - started >= 19 / 50.0 - 0.01

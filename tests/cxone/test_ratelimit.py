from __future__ import annotations

import threading
import time
from collections import deque

import pytest

from archiver.cxone import RateLimiter


class FakeClock:
    """A clock that only moves when the limiter sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


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


def test_throttle_cuts_multiplicatively_once_per_hold_and_not_below_floor() -> None:
    clock = FakeClock()
    lim = limiter(clock, 10.0)
    assert lim.current_rate == 10.0
    lim.on_throttled()
    assert lim.current_rate == pytest.approx(7.0)
    clock.now += 0.5  # 429s of requests already in flight: same overload
    lim.on_throttled()
    assert lim.current_rate == pytest.approx(7.0)
    clock.now += 1.0
    lim.on_throttled()
    assert lim.current_rate == pytest.approx(4.9)
    for _ in range(20):
        clock.now += 1.0
        lim.on_throttled()
    assert lim.current_rate == pytest.approx(0.5)  # floor: 5 % of the ceiling


def test_success_adds_back_two_percent_of_ceiling_per_second() -> None:
    clock = FakeClock()
    lim = limiter(clock, 10.0)
    lim.on_throttled()  # t=0: 7.0
    clock.now = 1.0
    lim.on_success()
    assert lim.current_rate == pytest.approx(7.2)
    clock.now = 1.5
    lim.on_success()
    assert lim.current_rate == pytest.approx(7.3)
    clock.now = 100.0  # a long idle gap counts as one second at most
    lim.on_success()
    assert lim.current_rate == pytest.approx(7.5)
    for _ in range(50):
        clock.now += 1.0
        lim.on_success()
    assert lim.current_rate == 10.0  # never above the ceiling


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
    lim.on_throttled()  # 7/s
    start = clock.now
    lim.acquire()
    lim.acquire()
    assert clock.now - start == pytest.approx(2 / 7.0)


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

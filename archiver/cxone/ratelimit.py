"""A client-side request ceiling shared by every thread of a run.

A token bucket refilled at ``current_rate`` gates every HTTP try. With
``adaptive`` on, the rate follows AIMD: each 429 cuts it multiplicatively, each
success adds back a little per second, so a run settles just under the
tenant's real limit even when the policy's figure is too optimistic. A 429
that names a ``Retry-After`` pauses the whole bucket, so every thread holds
back, not just the one that was told.

Written by hand because it needs a rate that moves at run time and a pause
shared by all threads, which fixed-rate limiter libraries do not model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Multiplicative decrease on a 429, and the floor (a fraction of the ceiling) it never goes below.
DECREASE_FACTOR = 0.7
FLOOR_FRACTION = 0.05
# Additive increase: this fraction of the ceiling per second of successes.
INCREASE_PER_SECOND = 0.02
# 429s answered within this many seconds of a cut belong to the same overload
# (requests that were already in flight); cutting again for each would collapse the rate.
DECREASE_HOLD_SECONDS = 1.0
# A success after a long idle gap is one piece of evidence, not many seconds' worth.
MAX_INCREASE_STEP_SECONDS = 1.0
MAX_BURST = 5.0
_EPSILON = 1e-9


class RateLimiter:
    """Thread-safe token bucket with an adaptive (AIMD) rate and a shared pause."""

    def __init__(
        self,
        max_per_second: float,
        adaptive: bool = True,
        *,
        burst: float | None = None,
        floor: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_per_second <= 0:
            raise ValueError("max_per_second must be positive")
        self.ceiling = float(max_per_second)
        self.adaptive = adaptive
        self.floor = min(
            self.ceiling, floor if floor is not None else self.ceiling * FLOOR_FRACTION
        )
        self.burst = burst if burst is not None else max(1.0, min(MAX_BURST, self.ceiling / 4))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        now = clock()
        self._rate = self.ceiling
        self._tokens = self.burst
        self._stamp = now
        self._paused_until = float("-inf")
        self._last_change = now
        self._last_decrease = float("-inf")

    @property
    def current_rate(self) -> float:
        """Requests per second currently allowed (the ceiling unless 429s lowered it)."""
        with self._lock:
            return self._rate

    def acquire(self) -> None:
        """Block until one request may be sent."""
        # No reservation: a sleeper re-checks after waking, so a pause or a rate
        # cut that happened meanwhile still applies to it.
        while True:
            with self._lock:
                now = self._clock()
                if now < self._paused_until:
                    wait = self._paused_until - now
                else:
                    self._refill(now)
                    # Tolerance: the refill after sleeping exactly the computed
                    # wait can land a rounding error short of a whole token.
                    if self._tokens >= 1.0 - _EPSILON:
                        self._tokens = max(0.0, self._tokens - 1.0)
                        return
                    wait = (1.0 - self._tokens) / self._rate
            self._sleep(wait)

    def pause(self, seconds: float) -> None:
        """Hold every caller of :meth:`acquire` back for ``seconds`` (e.g. a Retry-After)."""
        if seconds <= 0:
            return
        with self._lock:
            now = self._clock()
            self._refill(now)
            self._paused_until = max(self._paused_until, now + seconds)
            # Nothing accrues during the pause, and only one request goes at
            # its end: a herd released at once would be throttled again.
            self._tokens = min(self._tokens, 1.0)
            self._stamp = max(self._stamp, self._paused_until)

    def on_throttled(self) -> None:
        """The server answered 429: lower the rate multiplicatively."""
        if not self.adaptive:
            return
        with self._lock:
            now = self._clock()
            if now - self._last_decrease < DECREASE_HOLD_SECONDS:
                return
            self._refill(now)
            self._rate = max(self.floor, self._rate * DECREASE_FACTOR)
            self._tokens = min(self._tokens, self._capacity())
            self._last_decrease = now
            self._last_change = now

    def on_success(self) -> None:
        """A request succeeded: probe the rate back up towards the ceiling."""
        if not self.adaptive:
            return
        with self._lock:
            now = self._clock()
            step = min(max(0.0, now - self._last_change), MAX_INCREASE_STEP_SECONDS)
            self._last_change = now
            if self._rate < self.ceiling:
                self._refill(now)
                self._rate = min(
                    self.ceiling, self._rate + self.ceiling * INCREASE_PER_SECOND * step
                )

    def _capacity(self) -> float:
        # A lowered rate also shrinks the burst, so a cut takes effect at once.
        return max(1.0, min(self.burst, self._rate))

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self._capacity(), self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now

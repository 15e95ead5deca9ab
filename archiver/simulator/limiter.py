"""A global token bucket: the server-side rate limit that answers 429."""

from __future__ import annotations

import threading
import time


class TokenBucket:
    """``rate`` requests per second with a burst of one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float | None:
        """None when the request may pass, else the seconds until it would."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            return (1.0 - self._tokens) / self.rate

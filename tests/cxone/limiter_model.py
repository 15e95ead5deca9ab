"""A deterministic model of a run against a rate-limited tenant, on a fake clock.

The tenant is a token bucket (``limit`` per second, a burst of one second's worth,
full at the start), as the simulator's is. ``workers`` client threads each send one
request at a time through the limiter; an answer arrives ``latency`` seconds after
its request; a 429 is handled as the client does: ``on_throttled``, then a pause of
the whole limiter for a Retry-After (``retry_after``) and a retry after it, or,
without the header, a retry after full-jitter backoff. Events run in time order on
one thread: while :meth:`RateLimiter.acquire` sleeps, the answers due meanwhile are
delivered, as other threads would deliver them.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from archiver.cxone import RateLimiter


class FakeClock:
    """A clock that only moves when the limiter sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self.on_sleep: Callable[[float], None] | None = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        target = self.now + seconds
        if self.on_sleep is not None:
            self.on_sleep(target)
        self.now = max(self.now, target)


class Tenant:
    """The server side: a token bucket that answers 429 with the wait it would need.

    ``refuse_share``: a share of calls also refused at random, whatever the load (a busy
    shared gateway in front of the tenant), with a wait of one second.
    """

    def __init__(
        self, limit: float, refuse_share: float = 0.0, rng: random.Random | None = None
    ) -> None:
        self.rate = limit
        self.capacity = max(1.0, limit)
        self.tokens = self.capacity
        self.stamp = 0.0
        self.refuse_share = refuse_share
        self.rng = rng or random.Random(0)

    def take(self, now: float) -> float | None:
        if self.refuse_share and self.rng.random() < self.refuse_share:
            return 1.0
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rate


@dataclass
class Result:
    sent: int = 0
    throttled: int = 0
    done: int = 0
    finished_at: float = 0.0
    rates: list[tuple[float, float]] = field(default_factory=list)  # (time, rate) after each answer
    most_tries: int = 0  # the most 429s one request met before it went through

    @property
    def share_429(self) -> float:
        return self.throttled / self.sent if self.sent else 0.0

    @property
    def per_second(self) -> float:
        """Requests per second over the whole run, 429s included (as the benchmark counts)."""
        return self.sent / self.finished_at

    @property
    def useful_per_second(self) -> float:
        return self.done / self.finished_at


def run(
    *,
    ceiling: float,
    limit: float,
    requests: int,
    retry_after: bool,
    workers: int = 8,
    latency: float = 0.005,
    initial_backoff: float = 1.5,
    max_backoff: float = 60.0,
    seed: int = 1,
    limiter_factory: Callable[..., RateLimiter] = RateLimiter,
    refuse_share: float = 0.0,
) -> Result:
    """``requests`` successful requests' worth of work; the figures of the run that did it."""
    clock = FakeClock()
    lim = limiter_factory(ceiling, clock=clock, sleep=clock.sleep)
    rng = random.Random(seed)
    tenant = Tenant(limit, refuse_share, random.Random(seed + 1000))
    result = Result()
    order = itertools.count()
    # (time, order, kind, tries): kind "ready" wants to send, "ok"/"429" is an answer.
    events: list[tuple[float, int, str, int, float]] = []
    remaining = requests

    def push(at: float, kind: str, tries: int = 0, wait: float = 0.0) -> None:
        heapq.heappush(events, (at, next(order), kind, tries, wait))

    def answer(kind: str, tries: int, wait: float) -> None:
        nonlocal remaining
        if kind == "ok":
            result.most_tries = max(result.most_tries, tries)
            lim.on_success()
            result.done += 1
            result.finished_at = clock.now
            if remaining > 0:
                remaining -= 1
                push(clock.now, "ready")
        else:
            if retry_after:
                delay = float(max(1, math.ceil(wait)))
                lim.on_throttled(min(delay, max_backoff))
            else:
                lim.on_throttled()
                delay = rng.uniform(0, min(max_backoff, initial_backoff * 2**tries))
            push(clock.now + delay, "ready", tries + 1)
        result.rates.append((clock.now, lim.current_rate))

    def deliver_until(target: float) -> None:
        # Answers due while a sender waits in the limiter reach it, as other threads' would.
        waiting = []
        while events and events[0][0] <= target:
            event = heapq.heappop(events)
            at, _, kind, tries, wait = event
            if kind == "ready":  # another sender: it queues behind this one
                waiting.append(event)
                continue
            clock.now = max(clock.now, at)
            answer(kind, tries, wait)
        for event in waiting:
            heapq.heappush(events, event)

    clock.on_sleep = deliver_until
    for _ in range(min(workers, requests)):
        remaining -= 1
        push(0.0, "ready")
    while events:
        at, _, kind, tries, wait = heapq.heappop(events)
        clock.now = max(clock.now, at)
        if kind != "ready":
            answer(kind, tries, wait)
            continue
        lim.acquire()
        result.sent += 1
        refused = tenant.take(clock.now)
        if refused is None:
            push(clock.now + latency, "ok", tries)
        else:
            result.throttled += 1
            push(clock.now + latency, "429", tries, refused)
    return result

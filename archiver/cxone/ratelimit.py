"""A client-side request ceiling shared by every thread of a run.

A token bucket refilled at ``current_rate`` gates every HTTP try. With
``adaptive`` on, the rate follows what the tenant actually accepts:

- A 429 cuts the rate to what the tenant was accepting just before it: the
  successes counted since the previous cut (at most the last second). Before
  any cut the tenant's burst is unknown, so those successes are spread over one
  more second than they took, as a tenant that allows a second's worth of burst
  (a common token bucket) would have let them through. No fixed factor: a
  ceiling far above the tenant's limit comes down in one step, a probe just
  over it loses only that much. Fewer successes than MIN_EVIDENCE tell
  something only when the run was pressing: a tenant that let a handful of
  many quick tries through (a slow one) is taken at that handful. Only when
  the run was all but idle, or nothing at all went through, does a 429 cut
  by a fixed factor instead.
- Without ``Retry-After`` (real CXone often sends none) nothing stops the
  other threads, so the rate goes a little under that figure: a little over
  would keep drawing 429s. A ``Retry-After`` pauses the whole bucket, so every
  thread holds back, not just the one that was told; the tenant refills while
  everyone waits, so the rate goes a little over the figure, to spend that
  refill at once instead of leaving it unused.
- For a while after a cut the rate holds, then it probes back up gently (a
  small share of itself per second of successes), so it creeps over the
  tenant's limit instead of jumping past it.
- A cut is a hypothesis: the tenant refuses because the run sends faster than it
  takes. Then the cut lowers the share of tries answered 429: the second of two
  cuts in a row is made on what the tenant accepted after the first (the first may
  be misled by the tenant's burst), which is under its limit, so 429s stop until
  the rate probes up again. Some servers refuse a share of calls whatever the load
  (a busy shared gateway): there every 429 cuts again, on the few successes since
  the last cut, and the rate sinks to its floor while the share of 429s stays the
  same. So when 429s keep coming after two cuts, while the run pressed on at the
  lowered rate (at least half of it, over the time no ``Retry-After`` paused) and
  before it probed back past what the tenant was seen to accept, and their share
  over the tries since the first cut (at least MIN_EVIDENCE_TRIES) lies between
  MIN_BACKGROUND_SHARE and MAX_BACKGROUND_SHARE, lowering the rate did nothing: it
  goes back to where it was before the cuts (before a run of such trials, if one
  ended by chance with the rate still low), and that share is the background. A
  share outside those bounds is never taken for chance: under the first it is the
  odd 429 of a run probing at its tenant's limit, over the second a run far over
  it, where the cuts must go on.
- Once a background share is known, a 429 cuts only when the 429s among the last
  tries since the rate last changed are more than it explains by chance (three
  standard deviations, and one). Such a cut is judged after BACKGROUND_TRIAL_TRIES
  tries at the lower rate: if their share is still at least SHARE_FALL of the one
  that called for the cut, the cut goes back too; if it fell, a tenant's limit was
  found, and the cut stays. Those tries, and tries at the ceiling whose 429s the
  background explains, refine the background share; tries under the ceiling do
  not, as the 429s of a rate probing past a tenant's limit would be taken for
  chance and the limit never found again.

Written by hand because it needs a rate that moves at run time and a pause
shared by all threads, which fixed-rate limiter libraries do not model.

:class:`HostLimits` keeps one limiter per API host for the policies one command
runs, so what one learnt of the host's limit carries over to the next.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from archiver.cxone.retry import interruptible_sleep

# A cut goes to this share of the rate the tenant was seen to accept (and always at
# least this far below the current rate); after a Retry-After, a little over it.
MARGIN = 0.95
MARGIN_AFTER_PAUSE = 1.05
# Successes are counted over at most this long before a 429.
WINDOW_SECONDS = 1.0
# Before the first cut, the tenant is assumed to have let a burst this long through.
ASSUMED_BURST_SECONDS = 1.0
# Fewer successes than this in the window say nothing of the tenant's limit unless the
# run was pressing (see _pressing): the cut is then by this factor. Without the 429s
# counted, a tenant slower than this many a second was only ever cut by the factor, a
# step every DECREASE_HOLD_SECONDS: seconds of 429s, in which calls with a short
# backoff ran out of tries.
MIN_EVIDENCE = 5
FALLBACK_FACTOR = 0.7
# The floor the rate never goes below: a share of the ceiling, so that a tenant that
# answers nothing but 429s for a while does not leave the run crawling afterwards, but
# never above FLOOR_MAX: a ceiling set far above the tenant's limit (200/s against 4/s)
# must still come down to it, or its 429s never end and calls run out of tries.
FLOOR_FRACTION = 0.05
FLOOR_MAX = 0.5
# 429s answered within this many seconds of a cut belong to the same overload
# (requests that were already in flight); another cut for each would collapse
# the rate. Later 429s cut again, on the successes counted since the cut.
DECREASE_HOLD_SECONDS = 0.25
# After a cut the rate holds this long before probing up ...
PROBE_HOLD_SECONDS = 5.0
# ... and then grows by this share of itself per second of successes.
INCREASE_PER_SECOND = 0.02
# A success after a long idle gap is one piece of evidence, not many seconds' worth.
MAX_INCREASE_STEP_SECONDS = 1.0
MAX_BURST = 5.0
# Telling a tenant's limit from refusals by chance (see the module's docstring). Only a
# share of 429s between these can be chance: under the first, the odd 429 of a run
# probing at its tenant's limit (one in a few hundred tries); over the second, a run far
# over it, where the cuts must go on. Random refusals of up to about a fifth of the calls
# are told as such; more look like a limit.
MIN_BACKGROUND_SHARE = 0.02
MAX_BACKGROUND_SHARE = 0.3
# Fewer tries than this since the first of the cuts say nothing of a share.
MIN_EVIDENCE_TRIES = 10
# With a background share known, a 429 cuts when the 429s among this many last tries
# since the rate last changed exceed what that share explains; fewer tries than
# MIN_BACKGROUND_TRIES tell nothing. A cut on such an excess is judged after
# BACKGROUND_TRIAL_TRIES tries at the lower rate: undone when their share is at least
# SHARE_FALL of the one that called for it.
BACKGROUND_WINDOW_TRIES = 50
MIN_BACKGROUND_TRIES = 20
BACKGROUND_TRIAL_TRIES = 30
SHARE_FALL = 0.5
# The background share is measured over about this many of the latest tries, so it
# follows a gateway that gets busier or quieter.
BACKGROUND_MEMORY_TRIES = 400
_EPSILON = 1e-9


class RateLimiter:
    """Thread-safe token bucket with a rate that follows the tenant's 429s, and a shared pause."""

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
            self.ceiling,
            floor if floor is not None else min(self.ceiling * FLOOR_FRACTION, FLOOR_MAX),
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
        self._started = now
        self._last_change = now
        self._last_cut: float | None = None
        self._recent: deque[float] = deque()  # times of the successes of the last window
        self._refused: deque[float] = deque()  # times of the 429s of the last window
        # The trial of the cuts in a row: whether one is open, the rate the last cut set,
        # and the share of 429s it was to lower (None after the first cut of a trial
        # without a background share: the few tries before a first 429 hide the
        # tenant's burst, and only a second cut is made on what the tenant took). An undo goes back to the rate before the first cut since the
        # rate was last that high (None: no cut since), across trials: a trial can end
        # with the rate probing past its cut by chance, far under where it was.
        self._trial = False
        self._restore_to: float | None = None
        self._cut_to = self.ceiling
        self._paused_seconds = 0.0  # all Retry-After pauses so far
        self._paused_at_cut = 0.0  # ... when the last cut was made
        self._share_before: float | None = None
        # Tries and 429s since the rate last changed (from the end of a cut's hold), and
        # those of the trial's earlier periods, from its first cut to its last.
        self._tries = 0
        self._tries_refused = 0
        self._trial_tries = 0
        self._trial_refused = 0
        self._window: deque[bool] = deque(maxlen=BACKGROUND_WINDOW_TRIES)  # True: a 429
        # The share of tries refused whatever the rate (0: none seen), and the tries and
        # 429s it was measured on.
        self._background = 0.0
        self._background_tries = 0
        self._background_refused = 0.0

    @property
    def current_rate(self) -> float:
        """Requests per second currently allowed (the ceiling unless 429s lowered it)."""
        with self._lock:
            return self._rate

    @property
    def paused_for(self) -> float:
        """Seconds every caller is still held back by a server's Retry-After (0 if none)."""
        with self._lock:
            return max(0.0, self._paused_until - self._clock())

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
            until = max(self._paused_until, now + seconds)
            self._paused_seconds += until - max(self._paused_until, now)
            self._paused_until = until
            # Nothing accrues during the pause, and only one request goes at
            # its end: a herd released at once would be throttled again.
            self._tokens = min(self._tokens, 1.0)
            self._stamp = max(self._stamp, self._paused_until)

    def on_throttled(self, retry_after: float | None = None) -> None:
        """The server answered 429: lower the rate to what it was seen to accept, unless
        the 429s are not about the rate (see the module's docstring).

        ``retry_after``: the wait the server asked for, when it named one and the
        policy respects it; every caller of :meth:`acquire` is held back that long.
        """
        with self._lock:
            paused_before = self._paused_seconds
        if retry_after is not None:
            self.pause(retry_after)
        if not self.adaptive:
            return
        with self._lock:
            now = self._clock()
            if self._last_cut is not None and now - self._last_cut < DECREASE_HOLD_SECONDS:
                self._refused.append(now)
                return
            self._refill(now)
            self._refused.append(now)
            self._count_try(refused=True)
            if self._trial and not self._background and not self._cut_tested(now, paused_before):
                # The rate probed back past what the tenant was seen to accept without
                # a 429 on the way, or the run was all but idle since the cut: the cut
                # held, as under a tenant's limit, or nothing tested it.
                self._trial = False
            if self._judge(refused=True):
                return
            if self._explained_by_background():
                self._learn_from_window()
                return
            if not self._trial:
                self._trial = True
                if self._restore_to is None or self._rate >= self._restore_to:
                    self._restore_to = self._rate
                self._share_before = self._window_share() if self._background else None
                self._trial_tries = self._trial_refused = 0
            else:
                self._trial_tries += self._tries
                self._trial_refused += self._tries_refused
                self._share_before = self._trial_refused / self._trial_tries
            accepted = self._accepted_rate(now)
            if accepted is None:
                target = self._rate * FALLBACK_FACTOR
            elif retry_after is not None and retry_after > 0:
                target = accepted * MARGIN_AFTER_PAUSE
            else:
                target = accepted * MARGIN
            self._rate = max(self.floor, min(target, self._rate * MARGIN))
            self._cut_to = self._rate
            self._paused_at_cut = paused_before
            self._tokens = min(self._tokens, self._capacity())
            self._last_cut = now
            self._last_change = now
            self._restart_count()

    def on_success(self) -> None:
        """A request succeeded: after a cut's hold, probe the rate back up, gently."""
        if not self.adaptive:
            return
        with self._lock:
            now = self._clock()
            self._recent.append(now)
            self._forget(now)
            # Answers within a cut's hold were sent at the rate before it.
            if self._last_cut is None or now - self._last_cut >= DECREASE_HOLD_SECONDS:
                self._count_try(refused=False)
                if not self._judge(refused=False):
                    self._learn_from_window()
            step = min(max(0.0, now - self._last_change), MAX_INCREASE_STEP_SECONDS)
            self._last_change = now
            if self._rate >= self.ceiling:
                return
            if self._last_cut is not None and now - self._last_cut < PROBE_HOLD_SECONDS:
                return
            self._refill(now)
            self._rate = min(self.ceiling, self._rate * (1.0 + INCREASE_PER_SECOND * step))

    def _count_try(self, *, refused: bool) -> None:
        self._tries += 1
        self._tries_refused += refused
        self._window.append(refused)

    def _restart_count(self) -> None:
        self._tries = self._tries_refused = 0
        self._window.clear()

    def _window_share(self) -> float:
        return sum(self._window) / len(self._window) if self._window else 0.0

    def _cut_tested(self, now: float, paused: float) -> bool:
        """Whether the tries since the last cut tested it: the rate is still under what
        the tenant was seen to accept, and the run tried at half the rate or more over
        the time since the cut that no Retry-After paused."""
        if self._rate > self._cut_to / MARGIN or self._last_cut is None:
            return False
        unpaused = now - self._last_cut - (paused - self._paused_at_cut)
        return self._tries >= self._rate / 2 * unpaused

    def _judge(self, *, refused: bool) -> bool:
        """Judge the cuts of the trial; True when they are undone. Without a background
        share, on a 429 after two cuts: the first was made on a share hidden by the
        tenant's burst, the second on what the tenant accepted after it, which brings
        a rate under a tenant's limit; 429s that keep coming at the same share whatever
        the rate are chance. With a background share, on the tries counted since a cut
        made on an excess over it, once there are enough."""
        if not self._trial or self._share_before is None:
            return False
        if self._background:
            if self._tries < BACKGROUND_TRIAL_TRIES:
                return False
            share = self._tries_refused / self._tries
            if not self._explained_by_background():
                return False  # still an excess: the cut was not enough, the next 429 cuts
            # At the lower rate the tries are refused by chance alone, whichever way
            # this goes: they measure the background share.
            self._learn_background(self._tries - refused, self._tries_refused - refused)
            if share >= SHARE_FALL * self._share_before:
                self._undo_cuts()
                return True
            # The cut lowered the share: load, and it stays.
            self._trial = False
            self._restore_to = None
            return False
        if not refused:
            return False
        # Every period since the first cut ended at a 429: the share over all of them,
        # less one (a count stopped at a 429 overstates the share).
        tries = self._trial_tries + self._tries - 1
        refusals = self._trial_refused + self._tries_refused - 1
        if (
            tries >= MIN_EVIDENCE_TRIES
            and MIN_BACKGROUND_SHARE * tries <= refusals <= MAX_BACKGROUND_SHARE * tries
        ):
            self._learn_background(tries, refusals)
            self._undo_cuts()
            return True
        return False

    def _learn_background(self, tries: int, refused: int) -> None:
        self._background_tries += max(tries, 1)
        self._background_refused += refused
        if self._background_tries > BACKGROUND_MEMORY_TRIES:
            keep = BACKGROUND_MEMORY_TRIES / self._background_tries
            self._background_tries = BACKGROUND_MEMORY_TRIES
            self._background_refused *= keep
        share = self._background_refused / self._background_tries
        self._background = min(MAX_BACKGROUND_SHARE, max(MIN_BACKGROUND_SHARE, share))

    def _learn_from_window(self) -> None:
        """Tries at the ceiling, outside a trial, whose 429s the background share explains:
        they measure it too. Not under the ceiling, where the rate may be probing up to a
        tenant's limit and the 429s of going past it would be learnt as chance."""
        if (
            self._background
            and not self._trial
            and self._rate >= self.ceiling
            and len(self._window) >= MIN_BACKGROUND_TRIES
        ):
            self._learn_background(1, int(self._window[-1]))

    def _undo_cuts(self) -> None:
        """The cuts did not lower the share of 429s: back to the rate before them."""
        assert self._restore_to is not None
        self._rate = self._restore_to
        self._restore_to = None
        self._trial = False
        self._share_before = None
        self._restart_count()

    def _explained_by_background(self) -> bool:
        """Whether the 429s among the last tries since the rate last changed are no more
        than the background share explains by chance (none known: never)."""
        share = self._background
        if not share:
            return False
        n = len(self._window)
        if n < MIN_BACKGROUND_TRIES:
            return True
        spread = math.sqrt(n * share * (1.0 - share))
        return sum(self._window) <= share * n + 3.0 * spread + 1.0

    def _accepted_rate(self, now: float) -> float | None:
        """Requests per second the tenant accepted before this 429; None when too few
        successes were counted to tell."""
        self._forget(now)
        since = max(self._last_cut or self._started, now - WINDOW_SECONDS)
        counted = sum(1 for t in self._recent if t > since)
        if counted < MIN_EVIDENCE and not self._pressing(now, since, counted):
            return None
        # Before any cut nothing is known of the tenant's burst: assume a second's worth
        # went through on top of its rate.
        burst = ASSUMED_BURST_SECONDS if self._last_cut is None else 0.0
        return counted / max(now - since + burst, _EPSILON)

    def _pressing(self, now: float, since: float, counted: int) -> bool:
        """Whether a handful of successes since ``since`` is the tenant's measure: some
        went through, and the run tried (successes and 429s, this one included) at least
        MIN_EVIDENCE times, at half the allowed rate or more. An idle run's few tries
        say nothing of the tenant; a run pressing on a slow tenant's door does."""
        tries = counted + sum(1 for t in self._refused if t > since)
        pace = tries / max(now - since, _EPSILON)
        return counted > 0 and tries >= MIN_EVIDENCE and pace >= self._rate / 2

    def _forget(self, now: float) -> None:
        horizon = now - WINDOW_SECONDS
        for times in (self._recent, self._refused):
            while times and times[0] <= horizon:
                times.popleft()

    def _capacity(self) -> float:
        # A lowered rate also shrinks the burst, so a cut takes effect at once.
        return max(1.0, min(self.burst, self._rate))

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self._capacity(), self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now


class HostLimits:
    """One :class:`RateLimiter` per API host for the policies one command runs, one after
    another (``archiver run FOLDER``): a rate the first learnt from 429s carries over to
    the next that talks to the same host, instead of being learnt again from more 429s.

    Every policy is declared (:meth:`declare`) before the first one runs; a shared
    limiter's ceiling is the lowest ``max_requests_per_second`` of the policies that use
    it: each is a reviewed statement of what the host takes, and the most careful one
    holds for all. Its waits end when :attr:`stopping` is set: the command stops then
    (a stop stops the command, not only the policy it came during), so one event serves
    all its connections.
    """

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._ceilings: dict[str, float] = {}
        self._users: dict[str, int] = {}
        self._limiters: dict[str, RateLimiter] = {}
        self._lock = threading.Lock()

    def declare(self, host: str, max_per_second: float) -> None:
        """A policy of the command will talk to ``host`` with this ceiling."""
        with self._lock:
            if host in self._limiters:
                raise RuntimeError(f"{host}: declared after its limiter was made")
            self._ceilings[host] = min(max_per_second, self._ceilings.get(host, max_per_second))
            self._users[host] = self._users.get(host, 0) + 1

    def shared(self, host: str) -> bool:
        """Whether more than one policy of the command talks to ``host``."""
        with self._lock:
            return self._users.get(host, 0) > 1

    def limiter(self, host: str, max_per_second: float) -> RateLimiter:
        """The limiter of ``host``: made by the first policy that asks, with the lowest
        declared ceiling (``max_per_second`` when the host was not declared)."""
        with self._lock:
            found = self._limiters.get(host)
            if found is None:
                ceiling = self._ceilings.setdefault(host, max_per_second)
                found = RateLimiter(ceiling, sleep=interruptible_sleep(self.stopping))
                self._limiters[host] = found
            return found

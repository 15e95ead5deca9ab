"""When and how long to wait before trying an API call again, per ``policy.retry``.

Built on tenacity: it owns the try loop, the stop rule and the sleeping; this
module only says which errors are worth another try (the ``Transient`` marker)
and how long to wait (the server's ``Retry-After`` when told to respect it,
else full-jitter exponential backoff).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from archiver.errors import CallAbandoned, RateLimited, ServerError, is_transient
from archiver.policy.model import Retry

if TYPE_CHECKING:
    from archiver.cxone.transport import Exchanges

log = logging.getLogger(__name__)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait per ``Retry-After`` (delta-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no claim about the local zone
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def server_delay(err: BaseException | None, policy: Retry) -> float | None:
    """The wait the server asked for, when the policy says to respect it."""
    if not policy.respect_retry_after:
        return None
    if isinstance(err, RateLimited):
        return err.retry_after
    if isinstance(err, ServerError) and err.retry_after is not None:
        # On a 5xx the header is advice (RFC 9110 15.6.4): followed, but never past
        # the policy's longest backoff, so it does not end the retries the way a 429's does.
        return min(err.retry_after, policy.max_backoff_seconds)
    return None


class Backoff(wait_base):
    """Retry-After when the server gave one (and the policy respects it), else full jitter.

    Full jitter is ``uniform(0, min(max_backoff, initial_backoff * 2**n))`` for
    the n-th retry (n from 0): callers that failed together spread out instead
    of coming back together.
    """

    def __init__(self, policy: Retry) -> None:
        self._policy = policy
        self._jitter = wait_random_exponential(
            multiplier=policy.initial_backoff_seconds, max=policy.max_backoff_seconds
        )

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        delay = server_delay(outcome.exception() if outcome else None, self._policy)
        if delay is not None:
            return delay
        return self._jitter(retry_state)


def _stop(policy: Retry) -> Callable[[RetryCallState], bool]:
    attempts = stop_after_attempt(policy.max_attempts)

    def stop(retry_state: RetryCallState) -> bool:
        if attempts(retry_state):
            return True
        # A server that asks for a longer wait than the policy allows for one
        # backoff is not waited for: the error goes up and a later run tries again.
        outcome = retry_state.outcome
        delay = server_delay(outcome.exception() if outcome else None, policy)
        return delay is not None and delay > policy.max_backoff_seconds

    return stop


def _log_retry(retry_state: RetryCallState) -> None:
    outcome = retry_state.outcome
    wait = retry_state.upcoming_sleep
    log.debug("retrying in %.2f s after: %s", wait, outcome.exception() if outcome else "")


def interruptible_sleep(stopping: threading.Event) -> Callable[[float], None]:
    """A sleep that ends as soon as ``stopping`` is set, raising CallAbandoned.

    Used for every wait of a run (retry backoff, the rate limiter), so a stopping run
    never sits out a Retry-After or a slow rate before it notices.
    """

    def sleep(seconds: float) -> None:
        if stopping.wait(max(0.0, seconds)):
            raise CallAbandoned("the run is stopping")

    return sleep


def grace_sleep(exchanges: Exchanges) -> Callable[[float], None]:
    """The backoff of a call that undoes a change of the run (resuming dialing): the
    first stop does not end it, so a 429 or a 5xx on the way out is tried again while
    the wait ends within the grace the stop leaves (``Exchanges.grace_left``, 5 s from
    the first stop); a wait that would outlast it, or a second stop, ends the call
    (CallAbandoned). Until a stop, it waits out the backoff as any call does."""

    def sleep(seconds: float) -> None:
        end = time.monotonic() + max(0.0, seconds)
        while True:
            if exchanges.abandons(cleanup=True):
                raise CallAbandoned("the run is stopping")
            now = time.monotonic()
            if exchanges.stopping and end > now + exchanges.grace_left():
                raise CallAbandoned("the run is stopping")
            if now >= end:
                return
            time.sleep(min(0.05, end - now))

    return sleep


def worth_retrying(err: BaseException) -> bool:
    """Transient, and not abandoned because the run is stopping."""
    return is_transient(err) and not isinstance(err, CallAbandoned)


def retrying(
    policy: Retry,
    *,
    sleep: Callable[[float], None] = time.sleep,
    retry_if: Callable[[BaseException], bool] = worth_retrying,
) -> Retrying:
    """A fresh try loop for one API operation (tenacity loops keep per-call state)."""
    return Retrying(
        stop=_stop(policy),
        wait=Backoff(policy),
        retry=retry_if_exception(retry_if),
        sleep=sleep,
        before_sleep=_log_retry,
        reraise=True,
    )

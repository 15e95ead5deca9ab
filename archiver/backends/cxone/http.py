"""One HTTP exchange with CXone, and what its answer means in archiver's error tree.

This is the boundary where statuses, the API's three error body shapes and
transport failures become :mod:`archiver.errors` exceptions. Messages carry the
server's own explanation with every secret scrubbed out.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from archiver import jsonsafe
from archiver.backends.cxone import wire
from archiver.cxone.client import RequestEvent
from archiver.cxone.ratelimit import RateLimiter
from archiver.cxone.retry import parse_retry_after
from archiver.cxone.transport import (
    MAX_ANSWER_BYTES,
    STOPPING,
    TRANSPORT_ERRORS,
    Exchange,
    Exchanges,
    broken_cause,
    read_body,
    scrub,
    tls_failure,
    truncate,
    undecodable_cause,
    unreachable_cause,
)
from archiver.cxone.transport import session as bounded_session
from archiver.errors import (
    ApiError,
    AuthError,
    CallAbandoned,
    CampaignActive,
    NetworkError,
    RateLimited,
    ServerError,
    TerminalApiError,
    Unreachable,
    unread_kind,
)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes
    sent_at: float  # time.monotonic() when the request went out, after its turn came

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> object:
        """The parsed body; None for 204 or an empty body."""
        if self.status == 204 or not self.body.strip():
            return None
        return jsonsafe.loads(self.body)


@dataclass(frozen=True, slots=True)
class Where:
    """What an exchange is about, for error messages."""

    endpoint: str  # "GET contacts/completed"
    campaign_id: str | None = None
    token: bool = False  # the token endpoint: a refusal means bad credentials
    # The call changes the tenant: its 2xx answer unread leaves what it did unknown.
    acts: bool = False
    attempt: int = 1  # the try of this operation (retries count up)

    @property
    def label(self) -> str:
        """The endpoint as the run report and metrics name it: ids in the path become
        ``{id}``, so one endpoint is one row whatever skill or list it reads."""
        method, _, path = self.endpoint.partition(" ")
        parts = ["{id}" if any(ch.isdigit() for ch in part) else part for part in path.split("/")]
        return f"{method} {'/'.join(parts)}"


def session(pool_size: int, exchanges: Exchanges) -> requests.Session:
    """A keep-alive session whose exchanges ``exchanges`` can cut (the campaign archive
    client's sockets, archiver.cxone.transport); retrying is ours, not urllib3's. The
    simulator and tests on loopback are never reached through an environment proxy."""
    s = bounded_session(pool_size, exchanges)
    s.headers.update({"Accept": wire.ACCEPT})
    return s


class Transport:
    """Sends one try through the shared rate limiter; never raises for a status."""

    def __init__(
        self,
        s: requests.Session,
        limiter: RateLimiter,
        *,
        timeouts: tuple[float, float],
        secrets: Callable[[], tuple[str, ...]],
        pause_cap: float | None = None,
        on_request: Callable[[RequestEvent], None] | None = None,
        exchanges: Exchanges | None = None,
    ) -> None:
        self._on_request = on_request
        self._exchanges = exchanges if exchanges is not None else Exchanges()
        self._session = s
        self._limiter = limiter
        self._timeouts = timeouts
        self._secrets = secrets
        # A 429's Retry-After holds every thread back, never longer than this
        # (retry.max_backoff_seconds); None: Retry-After is not respected.
        self._pause_cap = pause_cap

    def close(self) -> None:
        self._session.close()
        self._exchanges.close()

    def stop(self) -> None:
        """Cut every exchange in flight (their calls end with CallAbandoned) and send no
        more. Takes no lock: safe from a signal handler."""
        self._exchanges.stop()

    def send(
        self, method: str, url: str, where: Where, *, cleanup: bool = False, **kw: Any
    ) -> Answer:
        """``cleanup``: a call that undoes the run's changes (restarting skills it
        stopped): it still goes once the run is stopping, not held back by the rate
        limiter then, and never ends later than the stop grace allows (Exchanges.grace_left); only a second
        stop abandons it."""
        if self._exchanges.abandons(cleanup=cleanup):
            raise CallAbandoned(STOPPING, campaign_id=where.campaign_id, endpoint=where.endpoint)
        last_call = cleanup and self._exchanges.stopping > 0
        if not last_call:
            try:
                self._limiter.acquire()
            except CallAbandoned:
                if not cleanup or self._exchanges.abandons(cleanup=True):
                    raise
                last_call = True  # stopped while it waited its turn: it goes now
        started = time.monotonic()
        # A deadline on the whole exchange: a server trickling its answer byte by byte
        # never meets the read timeout, which bounds each read.
        budget = sum(self._timeouts)
        if last_call:
            budget = min(budget, self._exchanges.grace_left())
        with self._exchanges.track(started + budget, cleanup=cleanup) as exchange:
            try:
                response = self._session.request(
                    method, url, timeout=self._timeouts, allow_redirects=False, stream=True,
                    **kw,
                )
                with response:
                    body = read_body(response, MAX_ANSWER_BYTES)
                if exchange.cut is not None:
                    # A body that ends when the connection closes looks complete once cut.
                    raise requests.ConnectionError("exchange cut off")
            except requests.RequestException as err:
                failed = self._cut_error(exchange, where, budget) or self._transport_error(
                    err, where, url)
                self._emit(method, where, None, started, str(failed))
                raise failed from err
        content = body.content
        if content is None:
            failed = self._unread(
                response.status_code, where,
                f"answer larger than {MAX_ANSWER_BYTES // (1024 * 1024)} MB: not read",
            )
            self._emit(method, where, response.status_code, started, str(failed))
            raise failed
        if body.undecodable and 200 <= response.status_code < 300:
            encoding = response.headers.get("Content-Encoding", "")
            failed = self._unread(response.status_code, where, undecodable_cause(encoding))
            self._emit(method, where, response.status_code, started, str(failed))
            raise failed
        answer = Answer(response.status_code, response.headers, content, started)
        self._emit(method, where, answer.status, started, None)
        if answer.ok:
            self._limiter.on_success()
        elif answer.status == 429:
            # No Retry-After is the norm on CXone: the rate follows the 429s themselves.
            self._limiter.on_throttled()
            wait = parse_retry_after(answer.headers.get(wire.RETRY_AFTER_HEADER))
            if wait is not None and self._pause_cap is not None:
                self._limiter.pause(min(wait, self._pause_cap))
        return answer

    def _emit(
        self, method: str, where: Where, status: int | None, started: float, error: str | None
    ) -> None:
        """Every try, to the run's monitor (the report's latency table and the metrics)."""
        if self._on_request is None:
            return
        self._on_request(RequestEvent(
            endpoint=where.label, method=method, status=status,
            duration_seconds=time.monotonic() - started, attempt=where.attempt,
            retried=where.attempt > 1, error=error, campaign_id=where.campaign_id,
        ))

    def error(self, answer: Answer, where: Where) -> ApiError:
        """The exception a non-2xx answer stands for."""
        status, cause = answer.status, self._cause(answer)
        kw: dict[str, Any] = {
            "status": status, "campaign_id": where.campaign_id, "endpoint": where.endpoint
        }
        if where.token and status in (400, 401, 403):
            return AuthError(f"access key or application credentials refused: {cause}", **kw)
        if status == 401:
            return AuthError(f"access token refused even after a fresh login: {cause}", **kw)
        if status == 403:
            return TerminalApiError(f"permission denied (check the access key's role): {cause}", **kw)
        if status == 409:
            return CampaignActive(f"conflict: {cause}", **kw)
        if status == 429:
            retry_after = parse_retry_after(answer.headers.get(wire.RETRY_AFTER_HEADER))
            return RateLimited(f"rate limited: {cause}", retry_after=retry_after, **kw)
        if status >= 500:
            retry_after = parse_retry_after(answer.headers.get(wire.RETRY_AFTER_HEADER))
            return ServerError(f"server error: {cause}", retry_after=retry_after, **kw)
        return TerminalApiError(cause, **kw)

    def invalid(self, answer: Answer, where: Where, problem: str) -> TerminalApiError:
        """A 2xx answer that cannot be read."""
        return self._unread(answer.status, where, problem)

    @staticmethod
    def _unread(status: int, where: Where, problem: str) -> TerminalApiError:
        """An answer not read: ``UnreadableAnswer`` when it is the 2xx of a call that
        changes the tenant (accepted, what it did is unknown), else a plain refusal."""
        return unread_kind(where.acts, status)(problem, status=status, campaign_id=where.campaign_id,
                    endpoint=where.endpoint)

    def _cause(self, answer: Answer) -> str:
        body: object = None
        with contextlib.suppress(ValueError):
            body = jsonsafe.loads(answer.body) if answer.body.strip() else None
        text = wire.error_text(body, answer.headers)
        if not text:
            text = answer.body.decode("utf-8", "replace").strip() or "no explanation given"
        return truncate(self._scrub(text))

    @staticmethod
    def _cut_error(exchange: Exchange, where: Where, budget: float) -> ApiError | None:
        """Why a cut exchange failed: the run is stopping, or its deadline passed."""
        kw: dict[str, Any] = {"campaign_id": where.campaign_id, "endpoint": where.endpoint}
        if exchange.cut == "stopped":
            return CallAbandoned(STOPPING, **kw)
        if exchange.cut == "deadline":
            return NetworkError(f"no complete answer within {budget:g} s", **kw)
        return None

    def _transport_error(
        self, err: requests.RequestException, where: Where, url: str
    ) -> ApiError:
        kw: dict[str, Any] = {"campaign_id": where.campaign_id, "endpoint": where.endpoint}
        # The auth host and the API host may differ: a message names the one at fault.
        host = urlsplit(url).netloc or url
        unreachable = unreachable_cause(err)
        if unreachable is not None:
            # Host-wide, not about one endpoint: a person checks the host, not the call.
            return Unreachable(f"cannot reach {host}: {unreachable}",
                               campaign_id=where.campaign_id)
        if isinstance(err, requests.exceptions.SSLError):
            return TerminalApiError(f"TLS failed: {tls_failure(err)}", **kw)
        if isinstance(err, requests.ConnectTimeout):
            return NetworkError(
                f"cannot reach {host}: timed out (no connection within {self._timeouts[0]:g} s)",
                **kw,
            )
        if isinstance(err, requests.ReadTimeout):
            return NetworkError(f"no answer within {self._timeouts[1]:g} s", **kw)
        if isinstance(err, TRANSPORT_ERRORS):
            cause = truncate(self._scrub(broken_cause(err)))
            return NetworkError(f"connection failed: {cause}", **kw)
        return TerminalApiError(f"request failed: {truncate(self._scrub(str(err)))}", **kw)

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets())

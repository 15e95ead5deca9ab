"""Routing, fault injection and counters: everything between a parsed request and its answer."""

from __future__ import annotations

import math
import random
import re
import threading
import traceback
from collections import Counter
from typing import Any
from urllib.parse import unquote

from archiver.simulator.config import Faults, SimConfig
from archiver.simulator.limiter import TokenBucket
from archiver.simulator.messages import SIM_PREFIX, ApiError, Request, Response, json_response
from archiver.simulator.observe import SimRoutes
from archiver.simulator.reqlog import RequestLog
from archiver.simulator.state import SimState
from archiver.simulator.webhooks import WebhookLog

# (path pattern, kind, method); the campaign id is the first group when present.
_ROUTES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"/oauth/token"), "token", "POST"),
    (re.compile(r"/api/v2/campaigns/([^/]+)/attempts"), "list", "GET"),
    (re.compile(r"/api/v2/campaigns/([^/]+)/contacts/archive"), "archive", "POST"),
    (re.compile(r"/api/v2/campaigns/([^/]+)"), "campaign", "PATCH"),
)
_TRANSIENT_STATUSES = (500, 502, 503)


class App:
    def __init__(self, config: SimConfig, faults: Faults) -> None:
        self.config = config
        self.state = SimState(config, faults)
        self.log = RequestLog(config.request_log_size)
        self.webhooks = WebhookLog(config.request_log_size)
        self.stopping = threading.Event()  # wakes answers held back by latency or hangs
        self._faults = faults
        self._bucket = _bucket_for(faults)
        self._throttle_left: Counter[str] = Counter(faults.throttle_next)
        self._garble_left: Counter[str] = Counter(faults.garble_next)
        self._rng = random.Random(f"faults/{config.seed}")
        self._lock = threading.Lock()  # guards the fault RNG and the counters below
        self._requests: Counter[str] = Counter()
        self._counters: Counter[str] = Counter()
        self._in_flight = 0
        self._max_in_flight = 0
        self.sim_routes = SimRoutes(self)

    # -- faults ---------------------------------------------------------------
    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults) -> None:
        previous = self._faults
        self._faults = faults
        if faults.rate_limit_rps != previous.rate_limit_rps:
            self._bucket = _bucket_for(faults)
        with self._lock:
            self._throttle_left = Counter(faults.throttle_next)
            self._garble_left = Counter(faults.garble_next)
        self.state.activate([c for c in faults.active_campaigns
                             if c not in previous.active_campaigns])

    def _chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    # -- counters -------------------------------------------------------------
    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counters[name] += n

    def enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(sorted(self._requests.items())),
                "total_requests": sum(self._requests.values()),
                "counters": dict(self._counters),
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
            }

    # -- requests -------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        try:
            if req.path.startswith(SIM_PREFIX):
                return self.sim_routes.handle(req)
            kind, resp = self._api(req)
        except Exception as err:  # a simulator bug must not look like an injected fault
            self.count("internal_errors")
            detail = "".join(traceback.format_exception_only(err)).strip()
            return ApiError(500, "simulator_error", detail).response()
        with self._lock:
            self._requests[f"{req.method} {kind} {resp.status}"] += 1
        self.log.record(req, kind, resp.status)
        return resp

    def _api(self, req: Request) -> tuple[str, Response]:
        route = _match(req.path)
        if route is None:
            return "unknown", ApiError(404, "not_found", f"no route for {req.path}").response()
        kind, cid, method = route
        if req.method != method:
            err = ApiError(405, "method_not_allowed", f"{req.method} is not allowed here",
                           [("Allow", method)])
            return kind, err.response()
        faults = self._faults
        delay = faults.latency_ms / 1000.0
        if self._chance(faults.hang_rate):
            # The call still takes effect; only its answer stalls, as when a server
            # commits and the connection then hangs.
            self.count("hangs")
            delay += faults.hang_seconds
        try:
            self._gateway_faults(faults, kind)
            resp = self._dispatch(kind, cid, req, faults)
        except ApiError as err:
            resp = err.response()
        if 200 <= resp.status < 300 and self._take(self._garble_left, kind):
            # The call took effect; its answer is lost on the way back.
            self.count("garbled")
            resp = Response(200, b"<html><body>upstream answer lost</body></html>",
                            "text/html")
        resp.delay = delay
        return kind, resp

    def _gateway_faults(self, faults: Faults, kind: str) -> None:
        """Rate limit and transient errors hit every call alike, before authentication."""
        bucket = self._bucket
        wait = bucket.take() if bucket is not None else None
        if wait is None and self._throttled(kind):
            wait = 0.0  # Retry-After is whole seconds: a server that wants less says 1
        if wait is not None:
            self.count("rate_limited")
            headers = [("Retry-After", str(max(1, math.ceil(wait))))]
            raise ApiError(429, "rate_limited", "too many requests",
                           headers if faults.retry_after else [])
        if self._chance(faults.error_5xx_rate):
            self.count("injected_errors")
            with self._lock:
                status = self._rng.choice(_TRANSIENT_STATUSES)
            raise ApiError(status, "unavailable", "injected transient failure")

    def _throttled(self, kind: str) -> bool:
        """Whether this call of ``kind`` is one of the next ones ``throttle_next`` names."""
        return self._take(self._throttle_left, kind)

    def _take(self, left: Counter[str], kind: str) -> bool:
        """Whether this call of ``kind`` is one of the next ones ``left`` counts down."""
        with self._lock:
            if left[kind] <= 0:
                return False
            left[kind] -= 1
            return True

    def _dispatch(self, kind: str, cid: str, req: Request, faults: Faults) -> Response:
        state = self.state
        if kind == "token":
            token = state.tokens.issue(req.content_type, req.body, faults.token_lifetime_seconds)
            return json_response(
                200,
                {"access_token": token, "token_type": "bearer",
                 "expires_in": faults.token_expires_in},
            )
        try:
            state.tokens.check(req.headers.get("authorization"))
        except ApiError:
            self.count("auth_failures")
            raise
        forced = faults.fail_status.get(cid)
        if forced is not None:
            raise ApiError(forced, "forced_failure", f"campaign {cid} answers {forced}")
        if kind == "list":
            return state.list_attempts(cid, req.query)
        if kind == "archive":
            key = req.headers.get("idempotency-key") if faults.idempotency_keys else None
            return state.archive(cid, req.content_type, req.body, key,
                                 faults.partial_failure_rate)
        return state.set_status(cid, req.content_type, req.body)


def _match(path: str) -> tuple[str, str, str] | None:
    for pattern, kind, method in _ROUTES:
        m = pattern.fullmatch(path)
        if m:
            return kind, (unquote(m.group(1)) if m.groups() else ""), method
    return None


def _bucket_for(faults: Faults) -> TokenBucket | None:
    rate = faults.rate_limit_rps
    return TokenBucket(rate) if rate else None


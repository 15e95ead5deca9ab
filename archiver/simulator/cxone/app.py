"""Routing, the gateway's faults (429 without Retry-After, 5xx), bearer and Accept checks."""

from __future__ import annotations

import math
import random
import re
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from archiver.simulator.cxone import answers
from archiver.simulator.cxone.answers import CxoneError
from archiver.simulator.cxone.config import Behaviour, CxoneSimConfig
from archiver.simulator.cxone.contacts import Contacts
from archiver.simulator.cxone.lists import CallLists
from archiver.simulator.cxone.skills import Skills
from archiver.simulator.cxone.tokens import Tokens
from archiver.simulator.limiter import TokenBucket
from archiver.simulator.messages import Request, Response
from archiver.simulator.reqlog import RequestLog

SIM_PREFIX = "/_sim/"
API_PREFIX = re.compile(r"/inContactAPI/services/(v\d+\.\d+)/(.*)")
# (kind, method, pattern of the path under the API root)
_ROUTES: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
    (kind, method, re.compile(pattern))
    for kind, method, pattern in (
        ("completed", "GET", r"contacts/completed"),
        ("dispositions", "GET", r"dispositions"),
        ("attempts", "GET", r"lists/call-lists/([^/]+)/attempts"),
        ("remove", "DELETE", r"lists/call-lists/([^/]+)/removeProspects"),
        ("campaign_skills", "GET", r"campaigns/([^/]+)/skills"),
        ("skill", "GET", r"skills/([^/]+)"),
        ("skill_stop", "POST", r"skills/([^/]+)/stop"),
        ("skill_start", "POST", r"skills/([^/]+)/start"),
    )
)
_NOT_RENDERABLE = "No known way to render data"


class CxoneApp:
    def __init__(self, config: CxoneSimConfig, behaviour: Behaviour, base_url: Callable[[], str]) -> None:
        self.config = config
        self._behaviour = behaviour
        self._base_url = base_url
        self.contacts = Contacts(config)
        self.skills = Skills(config)
        self.lists = CallLists(config, self.contacts.dispositions)
        self.tokens = Tokens(config, base_url)
        self.log = RequestLog(config.request_log_size)
        self._lock = threading.Lock()
        self._rng = random.Random(f"faults/{config.seed}")
        self._bucket = _bucket(behaviour)
        self._injected: deque[int] = deque()
        self._lost_removals = 0
        self._token_faults: deque[int] = deque()
        self.counts: Counter[str] = Counter()

    # -- behaviour -----------------------------------------------------------------
    @property
    def behaviour(self) -> Behaviour:
        return self._behaviour

    def set(self, **changes: Any) -> None:
        new = replace(self._behaviour, **changes)
        if new.invented_rate_limit_rps != self._behaviour.invented_rate_limit_rps:
            self._bucket = _bucket(new)
        self._behaviour = new

    def inject(self, *statuses: int) -> None:
        """The next API calls answer these statuses, one each, in order."""
        with self._lock:
            self._injected.extend(statuses)

    def inject_token(self, *statuses: int) -> None:
        """The next token requests answer these statuses, one each, in order."""
        with self._lock:
            self._token_faults.extend(statuses)

    def lose_removal_answers(self, count: int) -> None:
        """The next ``count`` removeProspects calls are applied, then answered 502, as
        when a gateway gives up on the tenant's answer on its way back."""
        with self._lock:
            self._lost_removals += count

    # -- requests ------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        kind, method, arg = _classify(req.path)
        try:
            _method(req, method)
            resp = self._dispatch(kind, arg, req)
        except CxoneError as err:
            resp = err.response()
        except Exception as err:  # a simulator bug must not pass for an injected fault
            detail = "".join(traceback.format_exception_only(err)).strip()
            resp = CxoneError(500, "simulator_error", detail).response()
        with self._lock:
            self.counts[f"{req.method} {kind} {resp.status}"] += 1
        self.log.record(_redacted(req), kind, resp.status)
        return resp

    def _dispatch(self, kind: str, arg: str, req: Request) -> Response:
        if kind == "token":
            with self._lock:
                fault = self._token_faults.popleft() if self._token_faults else None
            if fault is not None:
                self.counts["injected"] += 1
                raise CxoneError(fault, "Injected", f"injected status {fault}")
            granted = self.tokens.grant(req, self._behaviour)
            return self._served("token") or granted
        if kind == "discovery":
            found = self._discovery(req.query)
            return self._served("discovery") or found
        if kind == "unknown":
            raise CxoneError(404, "NotFound", f"no route for {req.path}")
        return self._api(kind, arg, req)

    def _api(self, kind: str, arg: str, req: Request) -> Response:
        resp = self._answer(kind, arg, req)
        return self._served(kind) or resp

    def _served(self, kind: str) -> Response | None:
        """The answer Behaviour.served_bodies names for this kind of call, if any."""
        behaviour = self._behaviour
        served = behaviour.served_bodies.get(kind)
        if served is None:
            return None
        headers = list(behaviour.served_headers.get(kind, {}).items())
        return Response(served[0], served[1], headers=headers)

    def _answer(self, kind: str, arg: str, req: Request) -> Response:
        behaviour = self._behaviour
        if behaviour.latency_seconds > 0:
            time.sleep(behaviour.latency_seconds)
        self._gateway(behaviour)
        self.tokens.check(req.headers.get("authorization"))
        if "application/json" not in req.headers.get("accept", "").lower():
            return Response(406, _NOT_RENDERABLE.encode(), content_type="text/plain",
                            headers=[(answers.IC_STATUS, _NOT_RENDERABLE)])
        if kind == "completed":
            return self.contacts.completed(req.query, behaviour, self._self_url(req))
        if kind == "dispositions":
            return self.contacts.disposition_list(req.query, behaviour)
        if kind == "attempts":
            return self.lists.attempts(arg, req.query, behaviour)
        if kind == "remove":
            resp = self.lists.remove(arg, req, behaviour)
            with self._lock:
                lost, self._lost_removals = self._lost_removals > 0, max(0, self._lost_removals - 1)
            if lost:
                raise CxoneError(502, "BadGateway", "the upstream answer was lost",
                                 shape=behaviour.error_shape, status_header=behaviour.ic_status_header)
            return resp
        if req.query and kind in ("campaign_skills", "skill"):
            answers.query(req.query, frozenset())
        if kind == "campaign_skills":
            return self.skills.of_campaign(arg)
        if kind == "skill":
            return self.skills.detail(arg)
        if kind == "skill_stop":
            return self.skills.stop(arg, req.query, behaviour)
        return self.skills.start(arg, req.query, behaviour)

    def _gateway(self, behaviour: Behaviour) -> None:
        shape, header = behaviour.error_shape, behaviour.ic_status_header
        with self._lock:
            injected = self._injected.popleft() if self._injected else None
        wait = behaviour.invented_retry_after
        retry_after = [("Retry-After", str(wait))] if wait is not None else []
        if injected is not None:
            self.counts["injected"] += 1
            raise CxoneError(injected, "Injected", f"injected status {injected}", shape=shape,
                             status_header=header, headers=retry_after if injected == 429 else [])
        bucket = self._bucket
        if bucket is not None and bucket.take() is not None:
            self.counts["rate_limited"] += 1
            # No Retry-After unless invented: CXone's 429s do not reliably carry one.
            raise CxoneError(429, "TooManyRequests", "rate limit exceeded", shape=shape,
                             status_header=header, headers=retry_after)
        if behaviour.error_5xx_rate > 0:
            with self._lock:
                hit = self._rng.random() < behaviour.error_5xx_rate
                status = self._rng.choice((500, 502, 503))
            if hit:
                self.counts["injected"] += 1
                raise CxoneError(status, "ServiceUnavailable", "transient failure", shape=shape,
                                 status_header=header)

    def _discovery(self, query: str) -> Response:
        fields = answers.query(query, frozenset({"tenantId"}))
        tenant = fields.get("tenantId")
        if not tenant:
            raise CxoneError(400, "invalid_request", "tenantId is required")
        if tenant != self.config.tenant_id:
            raise CxoneError(404, "not_found", f"tenant {tenant} not found")
        base = self._base_url()
        return answers.ok({
            "private": False, "area": "na1", "cluster": "SIM1", "domain": "loopback",
            "acdDomain": "loopback", "uhDomain": "loopback", "ui_endpoint": base,
            "auth_endpoint": base, "api_endpoint": base, "tenantId": tenant,
        })

    def _self_url(self, req: Request) -> str:
        return self._base_url() + req.path

    def stats(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self.counts)
        return {
            "requests": counts,
            "churned": self.contacts.churned,
            "grants": dict(self.tokens.grants),
        }


def _classify(path: str) -> tuple[str, str, str]:
    """(kind, method, path argument) of a request path; kind "unknown" for no route."""
    if path == "/auth/token":
        return "token", "POST", ""
    if path == "/.well-known/cxone-configuration":
        return "discovery", "GET", ""
    m = API_PREFIX.fullmatch(path)
    if m is not None:
        for kind, method, pattern in _ROUTES:
            found = pattern.fullmatch(m.group(2))
            if found:
                return kind, method, unquote(found.group(1)) if found.groups() else ""
    return "unknown", "", ""


def _method(req: Request, method: str) -> None:
    if method and req.method != method:
        raise CxoneError(405, "MethodNotAllowed", f"{req.method} is not allowed here",
                         headers=[("Allow", method)])


def _bucket(behaviour: Behaviour) -> TokenBucket | None:
    rate = behaviour.invented_rate_limit_rps
    return TokenBucket(rate) if rate > 0 and math.isfinite(rate) else None


def _redacted(req: Request) -> Request:
    """The request for the log, its refresh token masked (the log masks passwords and
    client secrets itself)."""
    if req.content_type != "application/x-www-form-urlencoded":
        return req
    try:
        pairs = parse_qsl(req.body.decode("ascii"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return req
    masked = [(k, "<redacted>" if k == "refresh_token" else v) for k, v in pairs]
    return replace(req, body=urlencode(masked).encode())

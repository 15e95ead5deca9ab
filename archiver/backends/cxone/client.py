"""The CXone API client: discovery, tokens, rate limit and retries around each call.

Every operation is one tenacity loop (:mod:`archiver.cxone.retry`): 429, 5xx,
timeouts and connection failures are tried again with full-jitter backoff (a 429
rarely names a Retry-After on CXone), and each try takes the rate limiter's turn.
A 401 gets one fresh login and one more send within the same try.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from requests.auth import HTTPBasicAuth

from archiver.backends.cxone import wire
from archiver.backends.cxone.auth import Credentials, Tokens
from archiver.backends.cxone.http import Answer, Transport, Where, session
from archiver.cxone import RequestEvent
from archiver.cxone.ratelimit import RateLimiter
from archiver.cxone.retry import grace_sleep, retrying
from archiver.cxone.transport import Exchanges
from archiver.errors import ApiError, AuthError, TerminalApiError, is_transient
from archiver.netutil import require_secure_url, url_problem
from archiver.policy.model import Retry


@dataclass(frozen=True, slots=True)
class Settings:
    """Connection settings, as plain values (the policy's ``connection`` for ``api: cxone``)."""

    tenant_id: str
    auth_url: str = wire.DEFAULT_AUTH_URL
    base_url: str | None = None  # overrides the discovered api_endpoint
    api_version: str = wire.DEFAULT_API_VERSION
    timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 5.0
    max_requests_per_second: float = 10.0
    max_in_flight: int = 4
    retry: Retry = field(default_factory=Retry)


class RepeatRefused(TerminalApiError):
    """A call that changes the tenant, refused when tried again after an earlier try's
    answer was lost (a 5xx, a timeout): that try may have been applied, and the refusal
    may only say that what it asks for is done already. What the call did is unknown."""


class CxoneApi:
    """Talks to one CXone tenant; safe to share between threads."""

    def __init__(
        self,
        settings: Settings,
        credentials: Credentials,
        *,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_request: Callable[[RequestEvent], None] | None = None,
    ) -> None:
        self._auth_url = require_secure_url(
            settings.auth_url, what="connection.auth_url"
        ).rstrip("/")
        self._override = (
            require_secure_url(settings.base_url, what="connection.base_url").rstrip("/")
            if settings.base_url
            else None
        )
        self._settings = settings
        self._credentials = credentials
        credentials.register()
        self._retry = settings.retry
        self._sleep = sleep
        self.limiter = limiter or RateLimiter(settings.max_requests_per_second)
        self.tokens = Tokens(credentials, self._issue,
                             issuer=f"the token endpoint of {urlsplit(self._auth_url).netloc}")
        exchanges = Exchanges()
        self._exchanges = exchanges
        self._transport = Transport(
            session(settings.max_in_flight + 1, exchanges),
            self.limiter,
            timeouts=(settings.connect_timeout_seconds, settings.timeout_seconds),
            secrets=lambda: (*credentials.secrets(), *self.tokens.issued()),
            pause_cap=self._retry.max_backoff_seconds if self._retry.respect_retry_after else None,
            on_request=on_request,
            exchanges=exchanges,
        )
        self._api: str | None = None
        self._api_lock = threading.Lock()
        self._local = threading.local()  # cleanup: the current thread's call is one

    def close(self) -> None:
        self._transport.close()

    def cancel(self) -> None:
        """Cut the calls in flight and send no more (CallAbandoned). No lock taken."""
        self._transport.stop()

    # -- operations ----------------------------------------------------------------
    def get(
        self, path: str, params: Mapping[str, str], *, campaign_id: str | None = None,
        cleanup: bool = False,
    ) -> object:
        """The answer's JSON; None for 204 (nothing, or no more records). ``cleanup``: a
        call that undoes the run's changes, still made once it is stopping
        (:meth:`Transport.send`)."""
        answer = self._perform("GET", path, campaign_id, params=params, cleanup=cleanup)
        return self._json(answer, Where(f"GET {path}", campaign_id))

    def post(
        self, path: str, params: Mapping[str, str] | None = None, *,
        campaign_id: str | None = None, cleanup: bool = False,
    ) -> Answer:
        return self._perform("POST", path, campaign_id, params=params, cleanup=cleanup)

    def delete(
        self, path: str, body: Any, *, campaign_id: str | None = None
    ) -> tuple[object, bool]:
        """The answer's JSON, and whether it answers a repeat: an earlier try may have
        been applied (its answer lost to a 5xx or a timeout), so what this answer says
        of the state before the call may not be true. A repeat refused as a whole is
        :class:`RepeatRefused`."""
        tries: list[int] = []
        try:
            answer = self._perform("DELETE", path, campaign_id, json=body, tries=tries, acts=True)
        except ApiError as err:
            if len(tries) > 1 and not is_transient(err):
                raise RepeatRefused(
                    f"refused when sent again after an answer was lost: {err.message}",
                    status=err.status, campaign_id=campaign_id, endpoint=err.endpoint,
                ) from err
            raise
        where = Where(f"DELETE {path}", campaign_id, acts=True)
        return self._json(answer, where), len(tries) > 1

    def check(self) -> None:
        """Log in and discover the API host now, with the retries every call has (a 503
        or a 429 from the auth host is tried again; refused credentials are not)."""

        def attempt() -> None:
            self.tokens.get()
            self.api_base()

        retrying(self._retry, sleep=self._sleep)(attempt)

    def api_base(self) -> str:
        """``{api_endpoint}/inContactAPI/services/{version}/``, discovered once."""
        with self._api_lock:
            if self._api is None:
                endpoint = self._override or self._discover()
                self._api = endpoint + wire.API_ROOT.format(version=self._settings.api_version)
            return self._api

    # -- tries ---------------------------------------------------------------------
    def _perform(
        self, method: str, path: str, campaign_id: str | None, *,
        tries: list[int] | None = None, cleanup: bool = False, acts: bool = False, **kw: Any,
    ) -> Answer:
        """``tries``, when given, gets one entry per try made. ``acts``: the call changes
        the tenant (:attr:`Where.acts`)."""
        made = tries if tries is not None else []

        def attempt() -> Answer:
            made.append(len(made) + 1)
            where = Where(f"{method} {path}", campaign_id, attempt=len(made), acts=acts)
            url = self.api_base() + path
            token = self.tokens.get()
            answer = self._send(method, url, where, token, cleanup=cleanup, **kw)
            if answer.status == 401:
                # Revoked or expired early: one fresh login, one more send.
                self.tokens.relogin(token)
                answer = self._send(method, url, where, self.tokens.get(), cleanup=cleanup, **kw)
            if not answer.ok:
                raise self._transport.error(answer, where)
            return answer

        # The grants a cleanup call needs are made for it as cleanup calls too.
        previous = getattr(self._local, "cleanup", False)
        self._local.cleanup = cleanup
        # Restarting skills the run stopped: a stop leaves it its grace (grace_sleep).
        sleep = grace_sleep(self._exchanges) if cleanup else self._sleep
        try:
            return retrying(self._retry, sleep=sleep)(attempt)
        finally:
            self._local.cleanup = previous

    def _send(
        self, method: str, url: str, where: Where, token: str, *, cleanup: bool, **kw: Any
    ) -> Answer:
        headers = {"Authorization": f"Bearer {token}"}
        return self._transport.send(method, url, where, headers=headers, cleanup=cleanup, **kw)

    def _issue(self, form: Mapping[str, str]) -> tuple[wire.TokenAnswer, float]:
        where = Where(f"POST {wire.TOKEN_PATH}", token=True)
        auth = HTTPBasicAuth(self._credentials.client_id, self._credentials.client_secret)
        answer = self._transport.send(
            "POST", self._auth_url + wire.TOKEN_PATH, where, data=dict(form), auth=auth,
            cleanup=getattr(self._local, "cleanup", False),
        )
        if not answer.ok:
            raise self._transport.error(answer, where)
        try:
            # The answer's values are secrets: a parse error names the field, never its value.
            token = wire.TokenAnswer.model_validate(self._json(answer, where))
        except ValidationError as err:
            raise self._transport.invalid(answer, where, f"token answer: {_first(err)}") from None
        tenant, wanted = wire.token_tenant(token), self._settings.tenant_id
        if tenant is not None and tenant.lower() != wanted.lower():
            # Every call would act on that tenant, under a policy written for this one.
            raise AuthError(
                f"the access key belongs to tenant {tenant}, not to connection.tenant_id "
                f"{wanted}", endpoint=where.endpoint,
            )
        return token, answer.sent_at

    def _discover(self) -> str:
        where = Where(f"GET {wire.DISCOVERY_PATH}")
        answer = self._transport.send(
            "GET",
            self._auth_url + wire.DISCOVERY_PATH,
            where,
            params=wire.discovery_params(self._settings.tenant_id),
        )
        if answer.status == 404:
            raise TerminalApiError(
                f"tenant {self._settings.tenant_id} is unknown to {self._auth_url} "
                "(check connection.tenant_id and connection.auth_url)",
                status=404,
                endpoint=where.endpoint,
            )
        if not answer.ok:
            raise self._transport.error(answer, where)
        try:
            found = wire.Discovery.model_validate(self._json(answer, where))
        except ValidationError as err:
            raise self._transport.invalid(answer, where, f"discovery: {_first(err)}") from None
        if found.tenant_id and found.tenant_id.strip().lower() != self._settings.tenant_id.lower():
            # Every call would go to that tenant's API host.
            raise self._transport.invalid(
                answer, where, f"discovery answered for tenant {found.tenant_id.strip()}")
        endpoint = found.api_endpoint.rstrip("/")
        if "://" not in endpoint:
            endpoint = f"https://{endpoint}"  # a bare host name: the API is https only
        problem = url_problem(endpoint, "the discovered api_endpoint")
        if not problem and ("?" in endpoint or "#" in endpoint):
            # Every call's path would land in it: each would go to another resource.
            problem = "the discovered api_endpoint has a query or a fragment"
        if problem:
            raise self._transport.invalid(answer, where, problem)
        return endpoint

    def _json(self, answer: Answer, where: Where) -> object:
        try:
            return answer.json()
        except ValueError:
            raise self._transport.invalid(answer, where, "answer is not valid JSON") from None


def _first(err: ValidationError) -> str:
    problem = err.errors(include_url=False, include_input=False, include_context=False)[0]
    where = ".".join(str(p) for p in problem["loc"]) or "(answer)"
    return f"field `{where}`: {problem['msg']}"

"""HTTP client of the CXone archive API: pooled, authenticated, rate-limited and retried.

This module is the one boundary where HTTP statuses and transport failures
become :mod:`archiver.errors` exceptions. Messages name the campaign, the
endpoint and the server's own explanation, with every secret scrubbed out.

Every call has a total deadline (connect plus the whole answer) and a bounded
answer (:mod:`archiver.cxone.transport`), and :meth:`CxoneClient.cancel` stops
them all: waits end, calls in flight are cut off, no new call starts.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlsplit

import requests
from pydantic import ValidationError

from archiver import jsonsafe
from archiver.cxone import wire
from archiver.cxone.auth import Token, TokenCache, bearer
from archiver.cxone.ratelimit import RateLimiter
from archiver.cxone.retry import (
    grace_sleep,
    interruptible_sleep,
    parse_retry_after,
    retrying,
    worth_retrying,
)
from archiver.cxone.transport import (
    MAX_ANSWER_BYTES,
    STOPPING,
    TRANSPORT_ERRORS,
    Body,
    Exchange,
    Exchanges,
    broken_cause,
    read_body,
    scrub,
    session,
    tls_failure,
    truncate,
    undecodable_cause,
    unreachable_cause,
)
from archiver.errors import (
    AnswerLost,
    ApiError,
    AuthError,
    CallAbandoned,
    CampaignActive,
    ConfigError,
    NetworkError,
    RateLimited,
    ServerError,
    TerminalApiError,
    Unreachable,
    unread_kind,
)
from archiver.netutil import is_loopback_host
from archiver.policy.model import Connection, Retry
from archiver.report.redact import register_secret

NOT_JSON = "answer is not valid JSON"


@dataclass(frozen=True, slots=True)
class RequestEvent:
    """One HTTP try, reported to ``on_request`` for metrics; never carries a secret."""

    endpoint: str  # "token" | "list" | "archive" | "campaign"
    method: str
    status: int | None  # None when no answer arrived
    duration_seconds: float
    attempt: int  # 1-based try number of this endpoint within one operation
    retried: bool
    error: str | None
    campaign_id: str | None = None  # the campaign the operation is about


@dataclass(slots=True)
class _Call:
    """One API operation, sent as many times as retries and a token refresh need."""

    endpoint: str
    method: str
    path: str
    campaign_id: str
    params: Mapping[str, str | int] | None = None
    json_body: Any = None
    form: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    sends: Counter[str] = field(default_factory=Counter)
    refreshed: bool = False
    # time.monotonic() when the last try went out, after its wait for a turn.
    sent_at: float | None = None
    # Undoes a change of this run (resuming dialing): still sent once the run is stopping.
    cleanup: bool = False
    # Changes the tenant (archives): a 2xx answer not read leaves what it did unknown.
    acts: bool = False

    @property
    def where(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    cause: str  # the server's explanation, scrubbed and truncated; "" on success
    retry_after: float | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def check_base_url(base_url: str) -> str:
    """The base URL without a trailing slash; ConfigError unless https (or http on loopback)."""
    parts = urlsplit(base_url)
    # Checked first, and the URL left out of the message: it would print the credentials.
    if parts.username is not None or parts.password is not None:
        raise ConfigError("connection.base_url must not carry credentials")
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ConfigError(f"connection.base_url {base_url!r} has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"connection.base_url {base_url!r} is not an http(s) URL")
    if parts.query or parts.fragment:
        raise ConfigError(f"connection.base_url {base_url!r} must not have a query or fragment")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(
            f"connection.base_url {base_url!r}: plain http is accepted only for loopback "
            "addresses (127.0.0.0/8, ::1, localhost); use https"
        )
    return base_url.rstrip("/")


def _first_problem(err: ValidationError) -> str:
    # Without the input: a token answer's values are secrets.
    problem = err.errors(include_url=False, include_input=False, include_context=False)[0]
    where = ".".join(str(p) for p in problem["loc"]) or "(answer)"
    return f"field `{where}`: {problem['msg']}"


class CxoneClient:
    """Talks to one CXone tenant; safe to share between the threads of a pool."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        connection: Connection,
        retry: Retry,
        limiter: RateLimiter,
        on_request: Callable[[RequestEvent], None] | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self._base = check_base_url(base_url)
        self.host = urlsplit(self._base).netloc
        self._client_id = client_id
        self._secret = client_secret
        self._retry = retry
        self._limiter = limiter
        self._on_request = on_request
        # Set by cancel(); the limiter given should sleep with interruptible_sleep on it.
        self._stopping = stopping if stopping is not None else threading.Event()
        self._sleep = interruptible_sleep(self._stopping)
        # The read timeout bounds each silence of the server; the deadline, enforced by
        # the transport's watchdog, bounds the whole exchange however it trickles in.
        self._timeout = (connection.connect_timeout_seconds, connection.timeout_seconds)
        self._deadline = connection.connect_timeout_seconds + connection.timeout_seconds
        self._tokens = TokenCache(issuer=f"the token endpoint of {self.host}")
        self._exchanges = Exchanges()
        self._session = session(connection.max_in_flight, self._exchanges)
        # Idempotency key -> archive calls sent with it by this client: a batch the
        # engine sends again (its answer lost) counts its sends on, as retries.
        self._sent_keys: dict[str, int] = {}
        self._sent_keys_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CxoneClient({self._base!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._exchanges.close()
        self._session.close()

    def cancel(self) -> None:
        """Stop: waits end and calls in flight are cut off within a fraction of a second,
        each with CallAbandoned; no new call starts, except one try of each call that
        resumes dialing (within the stop grace: Exchanges.grace_left). A second cancel stops those too.

        Safe from a signal handler: it takes no lock.
        """
        self._exchanges.stop()
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._stopping.is_set()

    def check_credentials(self) -> None:
        """Get an access token now, so refused credentials or an unreachable host stop a
        run before it starts. A refused connection or an unknown name is not retried:
        it is a wrong host, or one that is down, and a person should hear of it at once."""
        call = _Call("token", "POST", wire.TOKEN_PATH, "")

        def first_token() -> str:
            return self._token(call)

        def worth_it(err: BaseException) -> bool:
            return worth_retrying(err) and not isinstance(err, Unreachable)

        self._retrying(call, retry_if=worth_it)(first_token)

    def credentials_refused(self) -> AuthError | None:
        """The error that refused this client's credentials during the run, if any."""
        refusal = self._tokens.refusal()
        return refusal if isinstance(refusal, AuthError) else None

    # -- the API ---------------------------------------------------------------

    def list_attempts(self, campaign_id: str, *, limit: int, offset: int) -> list[object]:
        """One page of completed attempts, as raw JSON records (parsed by the caller)."""
        call = _Call(
            "list",
            "GET",
            self._path(wire.ATTEMPTS_PATH, campaign_id),
            campaign_id,
            params=wire.list_params(limit, offset),
        )
        answer = self._perform(call)
        records = self._json(call, answer)
        if not isinstance(records, list):
            msg = f"answer is a JSON {jsonsafe.type_name(records)}, not an array"
            raise self._api_error(TerminalApiError, call, answer.status, msg)
        return records

    def archive(
        self, campaign_id: str, request: wire.ArchiveRequest, *, idempotency_key: str
    ) -> wire.ArchiveResponse:
        """Archive one batch; every try carries the same idempotency key."""
        call = _Call(
            "archive",
            "POST",
            self._path(wire.ARCHIVE_PATH, campaign_id),
            campaign_id,
            json_body=request,
            headers={wire.IDEMPOTENCY_HEADER: idempotency_key},
            acts=True,
        )
        with self._sent_keys_lock:
            call.sends["archive"] = self._sent_keys.get(idempotency_key, 0)
        try:
            answer = self._perform(call)  # a 2xx: the call was accepted
        finally:
            with self._sent_keys_lock:
                self._sent_keys[idempotency_key] = call.sends["archive"]
        # Its own answer unreadable (not JSON, not its shape, or too large) is
        # UnreadableAnswer, what it archived unknown; the token's, read on the way, is a
        # plain terminal error (see _unread).
        try:
            return wire.ArchiveResponse.model_validate(self._json(call, answer))
        except ValidationError as err:
            msg = f"archive answer is not valid: {_first_problem(err)}"
            raise self._unread(call, answer.status, msg) from None

    def set_campaign_status(self, campaign_id: str, status: wire.CampaignStatus) -> None:
        """Pause or resume a campaign's dialing."""
        call = _Call(
            "campaign",
            "PATCH",
            self._path(wire.CAMPAIGN_PATH, campaign_id),
            campaign_id,
            json_body=wire.CampaignStatusPatch(status=status).body(),
            # Resuming is the one change still made once the run is stopping: a
            # campaign must not stay paused because its run was interrupted.
            cleanup=status == "ACTIVE",
        )
        self._perform(call)

    # -- tries -----------------------------------------------------------------

    def _perform(self, call: _Call) -> _Answer:
        # A call that changes the tenant is tried again only when it certainly did not
        # take effect (429, a connection never made): not after AnswerLost.
        retry_if = _not_lost if call.acts else worth_retrying
        answer: _Answer = self._retrying(call, retry_if=retry_if)(self._try, call)
        return answer

    def _retrying(
        self, call: _Call, retry_if: Callable[[BaseException], bool] = worth_retrying
    ) -> Callable[..., Any]:
        sleep = self._sleep
        if call.cleanup:  # resuming dialing: a stop leaves it its grace (grace_sleep)
            sleep = grace_sleep(self._exchanges)
        loop = retrying(self._retry, sleep=sleep, retry_if=retry_if)

        def run(fn: Callable[..., Any], *args: Any) -> Any:
            try:
                return loop(fn, *args)
            except CallAbandoned as err:
                if err.endpoint is None:  # from a wait, which knows no call
                    raise self._abandoned(call) from None
                raise

        return run

    def _try(self, call: _Call) -> _Answer:
        answer, token = self._send(call, authorized=True)
        if answer.status == 401 and token is not None and not call.refreshed:
            # The token may have been revoked or expired early: one fresh token, one more send.
            call.refreshed = True
            self._tokens.invalidate(token)
            answer, _ = self._send(call, authorized=True)
        if not answer.ok:
            raise self._status_error(call, answer)
        return answer

    def _token(self, call: _Call) -> str:
        try:
            return self._tokens.get(lambda: self._fetch_token(call))
        except AuthError as err:
            # Refused credentials are refused for every call: the one refusal is raised
            # again for each caller, which it must name, not the campaign whose call
            # happened to fetch the token (that campaign's reason would be every one's).
            campaign_id = call.campaign_id or None
            if err.campaign_id == campaign_id:
                raise
            raise AuthError(
                err.message, status=err.status, campaign_id=campaign_id, endpoint=err.endpoint
            ) from None

    def _fetch_token(self, on_behalf: _Call) -> Token:
        # Counted with the operation that needed it, so its transient failures
        # use that operation's retry budget instead of a nested loop of their own.
        call = _Call(
            "token",
            "POST",
            wire.TOKEN_PATH,
            on_behalf.campaign_id,
            form=wire.token_form(self._client_id, self._secret),
            sends=on_behalf.sends,
            cleanup=on_behalf.cleanup,
        )
        answer, _ = self._send(call, authorized=False)
        if not answer.ok:
            raise self._status_error(call, answer)
        try:
            parsed = wire.TokenResponse.model_validate(self._json(call, answer))
        except ValidationError as err:
            msg = f"token answer is not valid: {_first_problem(err)}"
            raise self._api_error(TerminalApiError, call, answer.status, msg) from None
        if not parsed.access_token:
            raise self._api_error(TerminalApiError, call, answer.status, "token answer is empty")
        # Every log handler masks registered secrets: a token must never reach a log line.
        register_secret(parsed.access_token)
        return Token(parsed.access_token, parsed.expires_in, sent_at=call.sent_at)

    def _send(self, call: _Call, *, authorized: bool) -> tuple[_Answer, str | None]:
        """One HTTP try: through the limiter, timed, reported, never raising for a status.

        An ``authorized`` call takes the current token after the limiter's wait, not
        before: a token taken first could expire while the call waits its turn (a
        long queue, a Retry-After pause) and be refused on arrival. Returns the answer
        and the token sent.
        """
        self._wait_turn(call)
        token = self._token(call) if authorized else None
        headers = dict(call.headers)
        if token is not None:
            headers.update(bearer(token))
        call.sends[call.endpoint] += 1
        attempt = call.sends[call.endpoint]
        call.sent_at = time.monotonic()
        started = time.perf_counter()
        try:
            status, reason, response_headers, read = self._exchange(call, headers)
        except ApiError as error:
            self._emit(call, attempt, None, time.perf_counter() - started, str(error))
            raise
        duration = time.perf_counter() - started
        body = read.content
        if body is None:
            limit = f"{MAX_ANSWER_BYTES / 2**20:g} MiB"
            msg = f"answer is larger than {limit}, the most one call may return; stopped reading it"
            too_large = self._unread(call, status, msg)
            self._emit(call, attempt, status, duration, str(too_large))
            raise too_large
        if read.undecodable and 200 <= status < 300:
            encoding = self._scrub(response_headers.get("Content-Encoding", ""))
            garbled = self._unread(call, status, undecodable_cause(encoding))
            self._emit(call, attempt, status, duration, str(garbled))
            raise garbled
        if 200 <= status < 300:
            self._limiter.on_success()
            answer = _Answer(status, body, "", None)
        else:
            retry_after = parse_retry_after(response_headers.get(wire.RETRY_AFTER_HEADER))
            answer = _Answer(status, body, self._cause(reason, body), retry_after)
            if status == 429:
                self._throttled(retry_after)
        error_text = None if answer.ok else f"HTTP {status}: {answer.cause}"
        self._emit(call, attempt, status, duration, error_text)
        return answer, token

    def _wait_turn(self, call: _Call) -> None:
        """The limiter's wait, unless the run is stopping (CallAbandoned then)."""
        if self._exchanges.abandons(call.cleanup):
            raise self._abandoned(call)
        if call.cleanup and self.stopping:
            return  # one last call: not held back behind calls that will never come
        try:
            self._limiter.acquire()
        except CallAbandoned:
            if call.cleanup and not self._exchanges.abandons(True):
                return  # stopped while it waited its turn: it goes now, as above
            raise self._abandoned(call) from None

    def _exchange(
        self, call: _Call, headers: Mapping[str, str]
    ) -> tuple[int, str, Mapping[str, str], Body]:
        """One request and its whole answer as read (see Body), within the deadline."""
        budget = self._deadline
        if call.cleanup and self.stopping:
            budget = min(budget, self._exchanges.grace_left())
        with self._exchanges.track(time.monotonic() + budget, cleanup=call.cleanup) as exchange:
            try:
                response = self._session.request(
                    call.method,
                    self._base + call.path,
                    params=call.params,
                    json=call.json_body,
                    data=call.form,
                    headers=headers,
                    timeout=self._timeout,
                    # A redirect would re-send the client secret (307/308 keep the body) elsewhere.
                    allow_redirects=False,
                    stream=True,
                )
                with response:
                    body = read_body(response)
                if exchange.cut is not None:
                    # A body that ends when the connection closes looks complete once cut.
                    raise requests.ConnectionError("exchange cut off")
            except requests.RequestException as err:
                raise self._transport_error(call, err, exchange, budget) from err
        return response.status_code, response.reason or "", response.headers, body

    def _throttled(self, retry_after: float | None) -> None:
        if self._retry.respect_retry_after and retry_after is not None:
            # Every thread holds back, not only the one that was told; never
            # longer than one backoff, which is all this run will wait anyway.
            self._limiter.on_throttled(min(retry_after, self._retry.max_backoff_seconds))
        else:
            self._limiter.on_throttled()

    def _emit(
        self, call: _Call, attempt: int, status: int | None, duration: float, error: str | None
    ) -> None:
        if self._on_request is not None:
            event = RequestEvent(
                endpoint=call.endpoint,
                method=call.method,
                status=status,
                duration_seconds=duration,
                attempt=attempt,
                retried=attempt > 1,
                error=error,
                campaign_id=call.campaign_id or None,
            )
            self._on_request(event)

    # -- errors ----------------------------------------------------------------

    def _status_error(self, call: _Call, answer: _Answer) -> ApiError:
        status, cause = answer.status, answer.cause
        if call.endpoint == "token" and status in (400, 401, 403):
            # Said the same for every endpoint and campaign: the host is what a person checks.
            msg = f"credentials refused by {self.host}: {cause} (HTTP {status})"
            return AuthError(msg, campaign_id=call.campaign_id)
        if status == 401:
            msg = f"access token refused even after a refresh: {cause}"
            return self._api_error(AuthError, call, status, msg)
        if status == 409:
            return self._api_error(
                CampaignActive, call, status, f"campaign is actively dialing: {cause}"
            )
        if status == 429:
            return self._rate_limited(call, answer)
        if status >= 500 and call.acts:
            # The request reached the server: a gateway's 502 or 504, or a 500 after
            # the change was made, says nothing of whether it was made.
            return AnswerLost(
                f"server error: {cause}; whether the call took effect is not known",
                status=status, campaign_id=call.campaign_id, endpoint=call.where,
            )
        if status >= 500:
            return ServerError(
                f"server error: {cause}",
                retry_after=answer.retry_after,
                status=status,
                campaign_id=call.campaign_id,
                endpoint=call.where,
            )
        return self._api_error(TerminalApiError, call, status, cause)

    def _rate_limited(self, call: _Call, answer: _Answer) -> RateLimited:
        hint = ""
        if answer.retry_after is not None:
            hint = f" (server asks to retry after {answer.retry_after:g} s"
            limit = self._retry.max_backoff_seconds
            if self._retry.respect_retry_after and answer.retry_after > limit:
                hint += f", longer than retry.max_backoff_seconds = {limit:g}"
            hint += ")"
        return RateLimited(
            f"rate limited{hint}: {answer.cause}",
            retry_after=answer.retry_after,
            status=answer.status,
            campaign_id=call.campaign_id,
            endpoint=call.where,
        )

    def _api_error(
        self, cls: type[ApiError], call: _Call, status: int | None, message: str
    ) -> ApiError:
        return cls(message, status=status, campaign_id=call.campaign_id, endpoint=call.where)

    def _abandoned(self, call: _Call) -> CallAbandoned:
        return CallAbandoned(STOPPING, campaign_id=call.campaign_id, endpoint=call.where)

    def _transport_error(
        self, call: _Call, err: requests.RequestException, exchange: Exchange, budget: float
    ) -> ApiError:
        """What a failed exchange means: a transient network error, or a terminal one."""
        # A cut socket fails with whatever error its read happened to get: the cut says why.
        if exchange.cut == "stopped":
            return self._abandoned(call)
        if exchange.cut == "deadline":
            msg = f"no complete answer within {budget:g} s"
            return self._api_error(AnswerLost if call.acts else NetworkError, call, None, msg)
        unreachable = unreachable_cause(err)
        if unreachable is not None:
            # Host-wide, not about one endpoint: a person checks the host, not the call.
            return Unreachable(
                f"cannot reach {self.host}: {unreachable}", campaign_id=call.campaign_id
            )
        if isinstance(err, requests.exceptions.SSLError):
            # A ConnectionError to requests, but no retry mends a certificate or a
            # server that does not speak TLS.
            cause = f"TLS failed: {tls_failure(err)}"
            return self._api_error(TerminalApiError, call, None, cause)
        if isinstance(err, TRANSPORT_ERRORS):
            # A connection never made sent nothing; once it was made, the request may
            # have arrived and been acted on, whatever became of the answer.
            sent = call.acts and not isinstance(err, requests.ConnectTimeout)
            kind = AnswerLost if sent else NetworkError
            return self._api_error(kind, call, None, self._transport_cause(err))
        cause = f"request failed: {truncate(self._scrub(str(err)))}"
        return self._api_error(TerminalApiError, call, None, cause)

    def _transport_cause(self, err: requests.RequestException) -> str:
        connect, read = self._timeout
        if isinstance(err, requests.ConnectTimeout):
            return f"cannot reach {self.host}: timed out (no connection within {connect:g} s)"
        if isinstance(err, requests.ReadTimeout):
            return f"no answer within {read:g} s"
        return f"connection failed: {truncate(self._scrub(broken_cause(err)))}"

    def _cause(self, reason: str, body: bytes) -> str:
        """Why the server refused: its error text, else its body, else the reason phrase."""
        text: str | None = None
        with contextlib.suppress(ValueError):
            text = wire.error_text(jsonsafe.loads(body))
        if not text:
            text = body.decode("utf-8", "replace").strip() or reason or "no explanation given"
        # Scrubbed before truncating, so no prefix of a secret survives the cut.
        return truncate(self._scrub(text))

    def _scrub(self, text: str) -> str:
        return scrub(text, (self._secret, *self._tokens.issued()))

    def _json(self, call: _Call, answer: _Answer) -> object:
        try:
            return jsonsafe.loads(answer.body)
        except ValueError:  # not JSON, or nested past the parser: no answer either
            # The body stays out of the message: a token answer would print the token.
            raise self._unread(call, answer.status, NOT_JSON) from None

    def _unread(self, call: _Call, status: int, message: str) -> ApiError:
        """An answer not read: ``UnreadableAnswer`` when it is the 2xx of a call that
        changes the tenant (accepted, what it did is unknown), else a plain refusal."""
        return self._api_error(unread_kind(call.acts, status), call, status, message)

    def _path(self, template: str, campaign_id: str) -> str:
        return template.format(campaign_id=quote(campaign_id, safe=""))


def _not_lost(err: BaseException) -> bool:
    """Worth trying again, and certainly not acted on (see AnswerLost)."""
    return worth_retrying(err) and not isinstance(err, AnswerLost)

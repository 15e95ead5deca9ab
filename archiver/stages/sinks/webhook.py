"""Sink ``webhook``: one signed event per archive batch to the data warehouse.

Signed as Standard Webhooks (https://www.standardwebhooks.com): ``webhook-id``
(the outbox event id, stable across retries), ``webhook-timestamp`` (seconds,
at delivery) and ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``,
keyed by the secret's bytes: ``whsec_`` stripped, the rest base64-decoded, as
the specification and its reference libraries read a secret. Redirects are not
followed: a signed body goes to the URL the policy names and nowhere else.
Delivery is called by the outbox; this module never decides to drop an event.

The receiver is a server the policy names, so what it answers is bounded like an API
answer: only the status counts; a body is read (and dropped) only when declared small
(``SMALL_ANSWER_BYTES``), so its connection serves the next event, and one of unknown
length never is (one that trickles or never ends neither holds the run nor fills
memory); the whole exchange (connect, request, status, headers and such a body) has
``timeout_seconds`` in all, past which its socket is cut
(:mod:`archiver.cxone.transport`'s watchdog).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field

from archiver.cxone import transport
from archiver.engine.building import BuildContext
from archiver.errors import ConfigError, WebhookError, WebhookGone
from archiver.netutil import require_secure_url, url_problem
from archiver.policy import _codes as codes
from archiver.policy.model import CXONE, EMBEDDED
from archiver.stages.descriptor import CheckContext, Finding, StageType
from archiver.templates import DEFAULT_WEBHOOK, CompiledTemplate, load_template
from archiver.webhook_secret import signing_key

# Upper case by convention; it also tells a variable name from most pasted secrets.
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")  # whole names only: fullmatch
# An answer body declared this small is read (and dropped) so its connection is kept.
SMALL_ANSWER_BYTES = 64 * 1024
# archiver's own variables (CXONE_CLIENT_SECRET, ARCHIVER_SIGNING_KEY, ...): never a
# webhook's secret.
RESERVED_ENV_PREFIXES = ("CXONE_", "ARCHIVER_")

# The built-in simulator's cxone personality has no webhook receiver.
NO_CXONE_RECEIVER = (
    f"webhook `url: {EMBEDDED}` is the built-in campaign-archive simulator's receiver; the "
    "cxone simulator has none: give the webhook a real https URL, or run `archiver simulate` "
    "and point the webhook at its /_sim/webhooks"
)


class WebhookSink(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["webhook"] = "webhook"
    url: str
    secret_env: str
    template: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)


def sign(key: bytes, event_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value for one delivery."""
    message = f"{event_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_identity(url: str) -> str:
    """The outbox's name for a webhook: its destination, stable across policy edits.

    A query string can hold a credential (``?code=...``): only a digest of it is kept.
    """
    if url == EMBEDDED:
        return f"webhook:{EMBEDDED}"
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"
    if parts.query:
        where += "?sha256:" + hashlib.sha256(parts.query.encode()).hexdigest()[:12]
    return f"webhook:{where}"


class Webhook:
    name = "webhook"
    events = frozenset({"batch_archived"})

    def __init__(
        self,
        url: str,
        key: bytes,
        template: CompiledTemplate,
        timeout: float,
        *,
        identity: str | None = None,
    ) -> None:
        self.url = require_secure_url(url, what="webhook url")
        self.identity = identity or webhook_identity(url)
        self._key = key
        self.template = template
        self.timeout = timeout
        # One deliverer per sink (the outbox's lock): one connection is enough.
        self._exchanges = transport.Exchanges()
        self._session = transport.session(1, self._exchanges)

    @classmethod
    def from_spec(cls, spec: WebhookSink, ctx: BuildContext) -> Webhook:
        url = spec.url
        if url == EMBEDDED:
            if ctx.webhook_url is None:
                raise ConfigError(
                    NO_CXONE_RECEIVER if ctx.policy.connection.api == CXONE
                    else "webhook url `embedded` needs connection.base_url: embedded"
                )
            url = ctx.webhook_url
        secret = ctx.secrets.get(spec.secret_env)
        if not secret:
            raise ConfigError(f"webhook secret: environment variable {spec.secret_env} is not set")
        key = signing_key(secret, env=spec.secret_env)
        template = load_template(
            ctx.policy.resolve(spec.template) if spec.template else None, DEFAULT_WEBHOOK,
            root=ctx.policy.root,
        )
        return cls(url, key, template, spec.timeout_seconds, identity=webhook_identity(spec.url))

    def render(self, event: Mapping[str, Any]) -> str:
        # render_json refused NaN, Infinity and lone surrogates: the body is plain JSON.
        return json.dumps(self.template.render_json(event), separators=(",", ":"),
                          allow_nan=False)

    def deliver(self, event_id: str, body: str) -> None:
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._key, event_id, timestamp, body),
        }
        with self._exchanges.track(time.monotonic() + self.timeout) as exchange:
            try:
                response = self._session.post(
                    self.url,
                    data=body.encode(),
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                    stream=True,
                )
                if _reusable(response):
                    # Read to its end, as it came (never inflated), so the connection goes
                    # back to the pool: a TLS handshake per event otherwise.
                    response.raw.read(SMALL_ANSWER_BYTES + 1, decode_content=False)
                    response.raw.release_conn()
                response.close()  # the status is the answer; any other body is never read
            except requests.RequestException as err:
                if exchange.cut is None:
                    raise WebhookError(f"webhook {self.url}: {type(err).__name__}") from None
            if exchange.cut is not None:
                # Headers cut off at the deadline can still parse as a whole answer.
                raise WebhookError(f"webhook {self.url}: no answer within {self.timeout:g} s")
        status = response.status_code
        if 200 <= status < 300:
            return
        if 300 <= status < 400:
            # A redirect would carry the signed body to an address the policy does not
            # name (possibly plain http): the event stays in the outbox instead.
            raise WebhookError(
                f"webhook {self.url} answered HTTP {status}: the endpoint redirected; "
                "redirects are not followed, the event is kept for a later run"
            )
        if status == 410:
            raise WebhookGone(f"webhook {self.url} answered 410 Gone; endpoint disabled")
        raise WebhookError(f"webhook {self.url} answered HTTP {status}")


def _reusable(response: requests.Response) -> bool:
    """Whether the answer's body is declared small enough to read for the connection's
    sake: none (204, 304) or a ``Content-Length`` of at most SMALL_ANSWER_BYTES. Reading
    it is bounded by the exchange's deadline, as its headers are; a body of unknown
    length (chunked) is never read."""
    if response.status_code in (204, 304):
        return True
    length = response.headers.get("content-length", "")
    return length.isascii() and length.isdigit() and int(length) <= SMALL_ANSWER_BYTES


def _check(spec: WebhookSink, ctx: CheckContext) -> Iterable[Finding]:
    problem = None if spec.url == EMBEDDED else url_problem(
        spec.url, f"`sinks[{ctx.index}].url`", otherwise=f" or `{EMBEDDED}`")
    if problem:
        yield Finding(("url",), problem, codes.INSECURE_URL)
    elif spec.url == EMBEDDED and ctx.policy.connection.api == CXONE:
        # Whatever its base_url: `base_url: embedded` would not give a cxone policy one.
        yield Finding(("url",), NO_CXONE_RECEIVER, codes.EMBEDDED_WEBHOOK)
    elif spec.url == EMBEDDED and ctx.policy.connection.base_url != EMBEDDED:
        yield Finding(("url",), f"webhook `url: {EMBEDDED}` needs `connection.base_url: "
                      f"{EMBEDDED}`", codes.EMBEDDED_WEBHOOK)
    if not ENV_NAME.fullmatch(spec.secret_env):
        # The value is not quoted: whoever wrote it may have pasted the secret itself.
        yield Finding(("secret_env",), "`secret_env` must name an environment variable in "
                      "upper case (like DW_WEBHOOK_SECRET), never hold the secret itself",
                      codes.BAD_SECRET_ENV)
    elif spec.secret_env.startswith(RESERVED_ENV_PREFIXES):
        # Else a policy could send the tenant's client secret to its own endpoint as the
        # HMAC key, where anyone holding the endpoint can recover it.
        yield Finding(("secret_env",), f"`secret_env` names `{spec.secret_env}`, one of "
                      "archiver's own variables (every CXONE_* and ARCHIVER_* name is reserved "
                      "for its credentials and settings); give the webhook secret a variable "
                      "of its own, like DW_WEBHOOK_SECRET", codes.RESERVED_SECRET_ENV)


def _secret_envs(spec: WebhookSink) -> tuple[str, ...]:
    return (spec.secret_env,)


def _embedded(spec: WebhookSink) -> bool:
    return spec.url == EMBEDDED


STAGE = StageType(
    kind="sink", name="webhook", options=WebhookSink, factory=Webhook.from_spec,
    summary="one signed event per archived batch (Standard Webhooks)",
    check=_check, events=Webhook.events, default_template=DEFAULT_WEBHOOK,
    secret_envs=_secret_envs, embedded=_embedded, inline=True, schema_def="webhook_sink",
)

"""Sink ``webhook``: one signed event per archive batch to the data warehouse.

Signed as Standard Webhooks: ``webhook-id`` (the outbox event id, stable
across retries), ``webhook-timestamp`` (seconds, at delivery) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``.
Delivery is called by the outbox; this module never decides to drop an event.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

import requests

from archiver.engine.registry import BuildContext
from archiver.errors import ConfigError, WebhookError, WebhookGone
from archiver.netutil import require_secure_url
from archiver.policy.model import WebhookSink
from archiver.templates import DEFAULT_WEBHOOK, CompiledTemplate, load_template

EMBEDDED = "embedded"


def sign(secret: str, event_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value for one delivery."""
    message = f"{event_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class Webhook:
    name = "webhook"
    events = frozenset({"batch_archived"})

    def __init__(self, url: str, secret: str, template: CompiledTemplate, timeout: float) -> None:
        self.url = require_secure_url(url, what="webhook url")
        self._secret = secret
        self.template = template
        self.timeout = timeout
        self._session = requests.Session()

    @classmethod
    def from_spec(cls, spec: WebhookSink, ctx: BuildContext) -> Webhook:
        url = spec.url
        if url == EMBEDDED:
            if ctx.webhook_url is None:
                raise ConfigError("webhook url `embedded` needs connection.base_url: embedded")
            url = ctx.webhook_url
        secret = ctx.secrets.get(spec.secret_env)
        if not secret:
            raise ConfigError(f"webhook secret: environment variable {spec.secret_env} is not set")
        template = load_template(
            ctx.policy.resolve(spec.template) if spec.template else None, DEFAULT_WEBHOOK
        )
        return cls(url, secret, template, spec.timeout_seconds)

    def render(self, event: Mapping[str, Any]) -> str:
        return json.dumps(self.template.render_json(event), separators=(",", ":"))

    def deliver(self, event_id: str, body: str) -> None:
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._secret, event_id, timestamp, body),
        }
        try:
            response = self._session.post(
                self.url, data=body.encode(), headers=headers, timeout=self.timeout
            )
        except requests.RequestException as err:
            raise WebhookError(f"webhook {self.url}: {type(err).__name__}") from None
        if 200 <= response.status_code < 300:
            return
        if response.status_code == 410:
            raise WebhookGone(f"webhook {self.url} answered 410 Gone; endpoint disabled")
        raise WebhookError(f"webhook {self.url} answered HTTP {response.status_code}")

"""From a policy and the environment to a ready API client (real tenant or embedded simulator).

Secrets are resolved here, before the first request: a missing one, or one too
short to be a secret, stops the run with a ConfigError naming the variable (never
its value). Then one token is fetched, so refused credentials or an unreachable
host stop the run before it starts, in one line.
"""

from __future__ import annotations

import base64
import logging
import secrets as _secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from archiver.cxone import CxoneClient, RateLimiter, RequestEvent
from archiver.cxone.retry import interruptible_sleep
from archiver.errors import ConfigError
from archiver.policy.model import EMBEDDED, Policy, WebhookSink
from archiver.report.redact import register_secret
from archiver.settings import Settings, check_secret, env_secret
from archiver.target import Target, target_for

log = logging.getLogger(__name__)

EMBEDDED_CLIENT = "embedded-demo"
EMBEDDED_ATTEMPTS = 1000
EMBEDDED_SEED = 7


@dataclass
class Connection:
    client: CxoneClient
    secrets: dict[str, str]
    webhook_url: str | None  # the embedded simulator's receiver
    embedded: object | None  # the running Simulator, when embedded
    target: Target  # what the client talks to: backend and host after every override


def base_url(policy: Policy, settings: Settings) -> str:
    return settings.base_url or policy.connection.base_url


def target_of(policy: Policy, settings: Settings) -> Target:
    """The target ``connect`` will talk to, known before it connects."""
    return target_for(base_url(policy, settings))


def _announce_host(policy: Policy, settings: Settings) -> None:
    """Say so when the host is not the reviewed policy's own."""
    if settings.base_url and settings.base_url != policy.connection.base_url:
        log.info(
            "connection.base_url overridden by %s: %s", settings.base_url_origin, settings.base_url
        )


def throwaway_webhook_secret() -> str:
    """A fresh secret in the Standard Webhooks format (whsec_ + base64 of random bytes)."""
    return "whsec_" + base64.b64encode(_secrets.token_bytes(24)).decode()


def resolve_secrets(policy: Policy, *, embedded: bool) -> dict[str, str]:
    found: dict[str, str] = {}
    missing: list[str] = []
    for sink in policy.sinks:
        if isinstance(sink, WebhookSink):
            value = env_secret(sink.secret_env)
            if value is None and embedded and sink.url == EMBEDDED:
                # The embedded receiver is ours: a throwaway secret is as good as any,
                # in the Standard Webhooks format (whsec_ + base64 of random bytes).
                value = throwaway_webhook_secret()
            if value is None:
                missing.append(sink.secret_env)
            else:
                # Checked by the webhook sink itself, more strictly than any length.
                found[sink.secret_env] = value
    if missing:
        raise ConfigError(
            "missing webhook secret(s): set "
            + ", ".join(sorted(set(missing)))
            + " in the environment or a .env file"
        )
    return found


@contextmanager
def connect(
    policy: Policy,
    settings: Settings | None = None,
    *,
    on_request: Callable[[RequestEvent], None] | None = None,
    attempts_per_campaign: int = EMBEDDED_ATTEMPTS,
    check_credentials: bool = True,
) -> Iterator[Connection]:
    """The client for ``policy``; with ``check_credentials`` it has fetched its first token.

    A caller with more to check before the first request (``run`` builds its sinks,
    which refuse a malformed webhook secret) passes False and calls
    ``client.check_credentials()`` itself.
    """
    settings = settings or Settings.load()
    _announce_host(policy, settings)
    url = base_url(policy, settings)
    embedded = url == EMBEDDED
    secrets = resolve_secrets(policy, embedded=embedded)
    for value in secrets.values():
        register_secret(value)
    # Set by client.cancel(): every wait of the run (limiter, backoff) ends at once.
    stopping = threading.Event()
    limiter = RateLimiter(
        policy.connection.max_requests_per_second, sleep=interruptible_sleep(stopping)
    )
    if not embedded:
        if settings.client_id is None or settings.client_secret is None:
            raise ConfigError(
                "CXONE_CLIENT_ID and CXONE_CLIENT_SECRET must be set for a real tenant"
            )
        secret = check_secret("CXONE_CLIENT_SECRET", settings.client_secret.get_secret_value())
        register_secret(secret)
        client = CxoneClient(
            url,
            settings.client_id,
            secret,
            connection=policy.connection,
            retry=policy.retry,
            limiter=limiter,
            on_request=on_request,
            stopping=stopping,
        )
        with client:
            if check_credentials:
                client.check_credentials()
            yield Connection(client, secrets, None, None, target_for(url))
        return

    from archiver.simulator import Faults, SimConfig, Simulator

    log.warning(
        "connection.base_url is `embedded`: running against the built-in simulator; "
        "nothing changes on a real tenant (set base_url, --base-url or CXONE_BASE_URL for one)"
    )

    webhook_secret = next(
        (
            secrets[s.secret_env]
            for s in policy.sinks
            if isinstance(s, WebhookSink) and s.url == EMBEDDED
        ),
        # No webhook of the policy posts to the receiver (plan lists without sinks):
        # it still needs a secret to check whatever does arrive.
        throwaway_webhook_secret(),
    )
    config = SimConfig(
        seed=EMBEDDED_SEED,
        campaign_ids=[c.id for c in policy.campaigns],
        attempts_per_campaign=attempts_per_campaign,
        client_id=EMBEDDED_CLIENT,
        client_secret=EMBEDDED_CLIENT,
        webhook_secret=webhook_secret,
    )
    faults = Faults(
        active_campaigns=[c.id for c in policy.campaigns if c.on_active == "pause_and_resume"]
    )
    with Simulator(config, faults) as sim:
        client = CxoneClient(
            sim.base_url,
            EMBEDDED_CLIENT,
            EMBEDDED_CLIENT,
            connection=policy.connection,
            retry=policy.retry,
            limiter=limiter,
            on_request=on_request,
            stopping=stopping,
        )
        with client:
            if check_credentials:
                client.check_credentials()
            yield Connection(client, secrets, sim.webhook_url, sim, target_for(url))


__all__ = ["Connection", "RequestEvent", "connect"]

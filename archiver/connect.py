"""From a policy and the environment to a ready backend (real tenant or embedded simulator).

The policy's ``connection.api`` picks the backend (``archiver.backends``): the
campaign archive API (the default) or NICE CXone's platform API. Secrets are
resolved here, before the first request: a missing one, or one too short to be a
secret, stops the run with a ConfigError naming the variable (never its value).
Then one token is fetched, so refused credentials or an unreachable host stop the
run before it starts, in one line. ``base_url: embedded`` starts the simulator
personality of the policy's API in-process.

The rate limiter: the policies of one command that talk to the same API host share
one (:class:`archiver.cxone.ratelimit.HostLimits`, keyed by :func:`limit_host`), so a
rate learnt from 429s carries over from one policy to the next.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import secrets as _secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from archiver.backends.campaign_archive import CampaignArchiveBackend
from archiver.cxone import CxoneClient, RateLimiter, RequestEvent
from archiver.cxone.ratelimit import HostLimits
from archiver.cxone.retry import interruptible_sleep
from archiver.engine.backend import Backend
from archiver.errors import AuthError, ConfigError
from archiver.policy.model import CXONE, EMBEDDED, Policy
from archiver.report.redact import register_secret
from archiver.settings import Settings, check_secret, env_secret
from archiver.stages import registry
from archiver.target import Target, target_for

if TYPE_CHECKING:
    # The cxone backend is loaded when a policy uses it (``api: cxone``), not before:
    # its wire models take a noticeable share of every other run's start-up.
    from archiver.backends.cxone.auth import Credentials as CxoneCredentials
    from archiver.backends.cxone.backend import CxoneBackend

log = logging.getLogger(__name__)

EMBEDDED_CLIENT = "embedded-demo"
EMBEDDED_ATTEMPTS = 1000
EMBEDDED_SEED = 7
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass
class Connection:
    backend: Backend
    secrets: dict[str, str]
    webhook_url: str | None  # the embedded simulator's receiver
    embedded: object | None  # the running simulator, when embedded
    target: Target  # what the backend talks to: API and host after every override
    # Fetch a token now (refused credentials, an unreachable host: before the run).
    check_credentials: Callable[[], None] = field(default=lambda: None)
    # The error that refused the credentials during the run, if any.
    credentials_refused: Callable[[], AuthError | None] = field(default=lambda: None)
    # Every call's turn; shared with the command's other policies on the same host.
    limiter: RateLimiter | None = None


def base_url(policy: Policy, settings: Settings) -> str:
    """The API host the run uses: ``--base-url``, CXONE_BASE_URL, the policy's, or (cxone
    without one) the auth host that discovery asks."""
    connection = policy.connection
    return settings.base_url or connection.base_url or connection.auth_url


def target_of(policy: Policy, settings: Settings) -> Target:
    """The target ``connect`` will talk to, known before it connects."""
    connection = policy.connection
    return target_for(
        base_url(policy, settings), backend=connection.api, tenant=connection.tenant_id
    )


def limit_host(policy: Policy, settings: Settings) -> str | None:
    """What a rate limit is kept per: ``scheme://host:port`` of the API base the run sends
    its calls to, known before connecting (after --base-url and CXONE_BASE_URL). A cxone
    policy without a base URL finds its API host by discovery: the tenant at its auth
    host stands for it (the same tenant always discovers the same host). None for
    ``embedded``: each run starts a simulator of its own."""
    connection = policy.connection
    if connection.api == CXONE:
        api = settings.base_url or connection.base_url
        if api == EMBEDDED:
            return None
        if api:
            return _origin(api)
        return f"{_origin(connection.auth_url)} tenant {connection.tenant_id}"
    url = base_url(policy, settings)
    return None if url == EMBEDDED else _origin(url)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{scheme}://{host}:{port or _DEFAULT_PORTS.get(scheme, 0)}"


def _limiter(
    policy: Policy, settings: Settings, limits: HostLimits | None
) -> tuple[RateLimiter, threading.Event]:
    """The run's limiter, and the event that ends its waits (set when the run stops)."""
    host = limit_host(policy, settings)
    ceiling = policy.connection.max_requests_per_second
    if limits is not None and host is not None:
        limiter = limits.limiter(host, ceiling)
        if limits.shared(host) and limiter.current_rate < limiter.ceiling:
            log.info(
                "rate limit of %s shared with the policies before: starting at %.2f "
                "requests/s (ceiling %g), as 429s taught them", host, limiter.current_rate,
                limiter.ceiling,
            )
        return limiter, limits.stopping
    stopping = threading.Event()
    return RateLimiter(ceiling, sleep=interruptible_sleep(stopping)), stopping


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
    for _, item, stage in registry.sinks_of(policy):
        for name in stage.secret_envs(item.options):
            value = env_secret(name)
            if value is None and embedded and stage.embedded(item.options):
                # The embedded receiver is ours: a throwaway secret is as good as any,
                # in the Standard Webhooks format (whsec_ + base64 of random bytes).
                value = throwaway_webhook_secret()
            if value is None:
                missing.append(name)
            else:
                # Checked by the sink itself, more strictly than any length.
                found[name] = value
    if missing:
        raise ConfigError(
            "missing sink secret(s): set "
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
    limits: HostLimits | None = None,
) -> Iterator[Connection]:
    """The client for ``policy``; with ``check_credentials`` it has fetched its first token.

    A caller with more to check before the first request (``run`` builds its sinks,
    which refuse a malformed webhook secret) passes False and calls
    ``client.check_credentials()`` itself. ``limits``: the command's limiters, shared by
    its policies per API host (a limiter of its own without).
    """
    settings = settings or Settings.load()
    if policy.connection.api == CXONE:
        with _connect_cxone(policy, settings, limits, on_request) as conn:
            yield conn
        return
    _announce_host(policy, settings)
    url = base_url(policy, settings)
    embedded = url == EMBEDDED
    secrets = resolve_secrets(policy, embedded=embedded)
    for value in secrets.values():
        register_secret(value)
    # Set by client.cancel(): every wait of the run (limiter, backoff) ends at once.
    limiter, stopping = _limiter(policy, settings, limits)
    if not embedded:
        if settings.client_id is None or settings.client_secret is None:
            raise ConfigError(
                f"CXONE_CLIENT_ID and CXONE_CLIENT_SECRET must be set for {target_of(policy, settings).host} "
                "(any API but the built-in simulator, `embedded`, takes credentials)"
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
        with client, _closing(
            _campaign_archive(
                policy, client, secrets, None, None, target_of(policy, settings), limiter
            )
        ) as conn:
            if check_credentials:
                client.check_credentials()
            yield conn
        return

    from archiver.simulator import Faults, SimConfig, Simulator

    log.warning(
        "running against the built-in simulator (`embedded`); nothing changes on a real "
        "tenant (a policy names one with connection.base_url, --base-url or CXONE_BASE_URL)"
    )

    from archiver.webhook_secret import signing_key

    receiver = next(
        (
            (name, secrets[name])
            for _, item, stage in registry.sinks_of(policy)
            if stage.embedded(item.options)
            for name in stage.secret_envs(item.options)[:1]
        ),
        None,
    )
    if receiver is not None:
        # The receiver reads it as the sink will: refused here, before the simulator
        # starts, as the sink would refuse it against a real receiver.
        signing_key(receiver[1], env=receiver[0])
    # No webhook of the policy posts to the receiver (plan lists without sinks): it still
    # needs a secret to check whatever does arrive. The sink reads the secret without the
    # whitespace around it (a line pasted with a space): so is the receiver given it.
    webhook_secret = receiver[1].strip() if receiver is not None else throwaway_webhook_secret()
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
        with client, _closing(_campaign_archive(
            policy, client, secrets, sim.webhook_url, sim, target_of(policy, settings), limiter
        )) as conn:
            if check_credentials:
                client.check_credentials()
            yield conn


@contextmanager
def _closing(conn: Connection) -> Iterator[Connection]:
    """The connection's backend is closed before its client: listing look-ahead still in
    flight ends within its deadline, which the client's watchdog keeps."""
    try:
        yield conn
    finally:
        conn.backend.close()


def _campaign_archive(
    policy: Policy,
    client: CxoneClient,
    secrets: dict[str, str],
    webhook_url: str | None,
    sim: object | None,
    target: Target,
    limiter: RateLimiter,
) -> Connection:
    backend = CampaignArchiveBackend(
        client,
        page_size=policy.source.page_size,
        max_in_flight=policy.connection.max_in_flight,
        campaigns=len(policy.campaigns),
        force_cold_storage=policy.batch.force_cold_storage,
        delete_active=policy.batch.delete_active,
    )
    return Connection(
        backend, secrets, webhook_url, sim, target,
        check_credentials=client.check_credentials,
        credentials_refused=client.credentials_refused,
        limiter=limiter,
    )


@contextmanager
def _connect_cxone(
    policy: Policy,
    settings: Settings,
    limits: HostLimits | None,
    on_request: Callable[[RequestEvent], None] | None = None,
) -> Iterator[Connection]:
    """NICE CXone's platform API: a real tenant with the access key and the registered
    application from the environment, or (``base_url: embedded``) the simulator's
    cxone personality in-process with its own demo credentials."""
    connection = policy.connection
    # --base-url and CXONE_BASE_URL decide it, as for the campaign archive API.
    embedded = (settings.base_url or connection.base_url) == EMBEDDED
    secrets = resolve_secrets(policy, embedded=embedded)
    target = target_of(policy, settings)
    if not embedded:
        _announce_host(policy, settings)
        credentials = cxone_credentials(settings)
        if not connection.tenant_id:
            raise ConfigError("connection.tenant_id is required for api: cxone")
        limiter, stopping = _limiter(policy, settings, limits)
        backend = _build_cxone(
            policy, connection.tenant_id, credentials, connection.auth_url,
            settings.base_url or connection.base_url, limiter=limiter, stopping=stopping,
            on_request=on_request,
        )
        try:
            yield Connection(backend, secrets, None, None, target, check_credentials=backend.check,
                             limiter=limiter)
        finally:
            backend.close()
        return

    from archiver.simulator.cxone import CxoneSimConfig, CxoneSimulator

    log.warning(
        "running against the built-in CXone simulator (`embedded`); nothing changes on a "
        "real tenant"
    )
    config = CxoneSimConfig()
    if connection.tenant_id:
        config = dataclasses.replace(config, tenant_id=connection.tenant_id)
    from archiver.backends.cxone.auth import Credentials as CxoneCredentials

    with CxoneSimulator(config) as sim:
        credentials = CxoneCredentials(
            access_key_id=config.access_key_id, access_key_secret=config.access_key_secret,
            client_id=config.client_id, client_secret=config.client_secret,
        )
        backend = _build_cxone(policy, config.tenant_id, credentials, sim.base_url, None,
                               on_request=on_request)
        try:
            yield Connection(backend, secrets, None, sim, target, check_credentials=backend.check,
                             limiter=backend.api.limiter)
        finally:
            backend.close()


def _build_cxone(
    policy: Policy,
    tenant_id: str,
    credentials: CxoneCredentials,
    auth_url: str,
    api_url: str | None,
    *,
    limiter: RateLimiter | None = None,
    stopping: threading.Event | None = None,
    on_request: Callable[[RequestEvent], None] | None = None,
) -> CxoneBackend:
    from archiver.backends import cxone

    c, source, retry = policy.connection, policy.source, policy.retry
    return cxone.build(
        tenant_id=tenant_id,
        credentials=credentials,
        auth_url=auth_url,
        base_url=api_url,
        api_version=c.api_version,
        timeout_seconds=c.timeout_seconds,
        connect_timeout_seconds=c.connect_timeout_seconds,
        max_requests_per_second=c.max_requests_per_second,
        max_in_flight=c.max_in_flight,
        max_attempts=retry.max_attempts,
        initial_backoff_seconds=retry.initial_backoff_seconds,
        max_backoff_seconds=retry.max_backoff_seconds,
        respect_retry_after=retry.respect_retry_after,
        source_type=source.type or "completed_contacts",
        page_size=source.page_size,
        since=source.since,
        call_list=source.call_list,
        actions={cp.id: cp.action or "export" for cp in policy.campaigns},
        limiter=limiter,
        stopping=stopping,
        on_request=on_request,
    )


def cxone_credentials(settings: Settings) -> CxoneCredentials:
    """The access key and the application from the environment (or .env): every one
    missing is named, each secret checked and registered for redaction."""
    values = {
        "CXONE_ACCESS_KEY_ID": settings.access_key_id,
        "CXONE_ACCESS_KEY_SECRET": _plain(settings.access_key_secret),
        "CXONE_CLIENT_ID": settings.client_id,
        "CXONE_CLIENT_SECRET": _plain(settings.client_secret),
    }
    missing = [name for name, value in values.items() if not (value or "").strip()]
    if missing:
        raise ConfigError(
            f"missing CXone credentials: set {', '.join(missing)} in the environment or a "
            ".env file (api: cxone)"
        )
    for name in ("CXONE_ACCESS_KEY_SECRET", "CXONE_CLIENT_SECRET"):
        register_secret(check_secret(name, values[name] or ""))
    from archiver.backends.cxone.auth import Credentials as CxoneCredentials

    return CxoneCredentials(
        access_key_id=(values["CXONE_ACCESS_KEY_ID"] or "").strip(),
        access_key_secret=values["CXONE_ACCESS_KEY_SECRET"] or "",
        client_id=(values["CXONE_CLIENT_ID"] or "").strip(),
        client_secret=values["CXONE_CLIENT_SECRET"] or "",
    )


def _plain(secret: object) -> str | None:
    value = getattr(secret, "get_secret_value", None)
    return value() if callable(value) else None


__all__ = ["Connection", "RequestEvent", "connect"]

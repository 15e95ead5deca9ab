"""Building a CXone backend from plain settings and the environment's credentials."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping

from archiver.backends.cxone import wire
from archiver.backends.cxone.auth import Credentials
from archiver.backends.cxone.backend import Action, CxoneBackend, Source, SourceType
from archiver.backends.cxone.client import CxoneApi, Settings
from archiver.cxone import RequestEvent
from archiver.cxone.ratelimit import RateLimiter
from archiver.cxone.retry import interruptible_sleep
from archiver.errors import ConfigError
from archiver.policy.model import Retry

ACCESS_KEY_ID = "CXONE_ACCESS_KEY_ID"
ACCESS_KEY_SECRET = "CXONE_ACCESS_KEY_SECRET"
CLIENT_ID = "CXONE_CLIENT_ID"
CLIENT_SECRET = "CXONE_CLIENT_SECRET"
VARIABLES = (ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLIENT_ID, CLIENT_SECRET)


def credentials_from_env(env: Mapping[str, str] | None = None) -> Credentials:
    """The access key and the application's client id and secret; ConfigError naming
    every variable that is missing (never a value)."""
    env = os.environ if env is None else env
    missing = [name for name in VARIABLES if not env.get(name, "").strip()]
    if missing:
        raise ConfigError(f"missing CXone credentials: set {', '.join(missing)}")
    return Credentials(
        access_key_id=env[ACCESS_KEY_ID].strip(),
        access_key_secret=env[ACCESS_KEY_SECRET],
        client_id=env[CLIENT_ID].strip(),
        client_secret=env[CLIENT_SECRET],
    )


def build(
    *,
    tenant_id: str,
    credentials: Credentials,
    auth_url: str = wire.DEFAULT_AUTH_URL,
    base_url: str | None = None,
    api_version: str = wire.DEFAULT_API_VERSION,
    timeout_seconds: float = 30.0,
    connect_timeout_seconds: float = 5.0,
    max_requests_per_second: float = 10.0,
    max_in_flight: int = 4,
    max_attempts: int = 6,
    initial_backoff_seconds: float = 1.5,
    max_backoff_seconds: float = 60.0,
    respect_retry_after: bool = True,
    source_type: SourceType = "completed_contacts",
    page_size: int = 100,
    since: str | None = None,
    call_list: str | None = None,
    actions: Mapping[str, Action] | None = None,
    stop_wait_seconds: float = 60.0,
    poll_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    stopping: threading.Event | None = None,
    limiter: RateLimiter | None = None,
    on_request: Callable[[RequestEvent], None] | None = None,
) -> CxoneBackend:
    """A backend for ``connection.api: cxone``; sends nothing until it is used.

    ``actions`` maps campaign ids to ``export`` (the default) or ``retire``.
    ``stopping``, once set (``CxoneBackend.cancel``), ends every wait of the backend
    (rate limiter, backoff, a stop's polling) with CallAbandoned.
    """
    if not tenant_id.strip():
        raise ConfigError("connection.tenant_id is required for api: cxone")
    retiring = sorted(cid for cid, action in (actions or {}).items() if action == "retire")
    if retiring and source_type != "call_list_attempts":
        raise ConfigError(
            f"campaign {retiring[0]}: action retire removes calling-list prospects and needs "
            "source.type call_list_attempts"
        )
    if source_type == "call_list_attempts" and not call_list:
        raise ConfigError("source.type call_list_attempts needs source.call_list")
    settings = Settings(
        tenant_id=tenant_id.strip(),
        auth_url=auth_url,
        base_url=base_url,
        api_version=api_version,
        timeout_seconds=timeout_seconds,
        connect_timeout_seconds=connect_timeout_seconds,
        max_requests_per_second=max_requests_per_second,
        max_in_flight=max_in_flight,
        retry=Retry(
            max_attempts=max_attempts,
            initial_backoff_seconds=initial_backoff_seconds,
            max_backoff_seconds=max_backoff_seconds,
            respect_retry_after=respect_retry_after,
        ),
    )
    source = Source(type=source_type, page_size=page_size, since=since, call_list=call_list)
    stopping = stopping if stopping is not None else threading.Event()
    if sleep is time.sleep:
        sleep = interruptible_sleep(stopping)
    if limiter is None:  # else one shared with other policies of the command
        limiter = RateLimiter(max_requests_per_second, sleep=sleep)
    api = CxoneApi(settings, credentials, limiter=limiter, sleep=sleep, on_request=on_request)
    return CxoneBackend(
        api, source, actions, stop_wait_seconds=stop_wait_seconds, poll_seconds=poll_seconds,
        sleep=sleep, stopping=stopping,
    )

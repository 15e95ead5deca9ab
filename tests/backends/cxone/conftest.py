"""A CXone simulator on a loopback port, and the cxone backend pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from archiver.backends.cxone import Credentials, CxoneBackend, build
from archiver.simulator.cxone import Behaviour, CxoneSimConfig, CxoneSimulator

# Fast retries: tests wait on backoff, not on the clock of a real tenant.
FAST = {
    "max_attempts": 10,
    "initial_backoff_seconds": 0.02,
    "max_backoff_seconds": 0.2,
    "timeout_seconds": 5.0,
    "max_requests_per_second": 500.0,
    "poll_seconds": 0.02,
}


def credentials(config: CxoneSimConfig, **over: str) -> Credentials:
    values = {
        "access_key_id": config.access_key_id,
        "access_key_secret": config.access_key_secret,
        "client_id": config.client_id,
        "client_secret": config.client_secret,
        **over,
    }
    return Credentials(**values)


@pytest.fixture
def start_sim() -> Iterator[Callable[..., CxoneSimulator]]:
    started: list[CxoneSimulator] = []

    def start(behaviour: Behaviour | None = None, **config: Any) -> CxoneSimulator:
        sim = CxoneSimulator(CxoneSimConfig(**config), behaviour or Behaviour()).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def backend_for() -> Iterator[Callable[..., CxoneBackend]]:
    built: list[CxoneBackend] = []

    def make(sim: CxoneSimulator, creds: Credentials | None = None, **over: Any) -> CxoneBackend:
        settings: dict[str, Any] = {
            "tenant_id": sim.config.tenant_id,
            "credentials": creds or credentials(sim.config),
            "auth_url": sim.base_url,
            **FAST,
            **over,
        }
        backend = build(**settings)
        built.append(backend)
        return backend

    yield make
    for backend in built:
        backend.close()


def listed_ids(backend: CxoneBackend, campaign_id: str, since: str | None = None) -> list[str]:
    return [r.id for page in backend.pages(campaign_id, since=since) for r in page.records]


def api_requests(sim: CxoneSimulator, kind: str | None = None) -> list[dict[str, Any]]:
    return [e for e in sim.requests() if kind is None or e["kind"] == kind]

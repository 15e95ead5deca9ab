from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from archiver.cxone import CxoneClient, RateLimiter, RequestEvent

from .samples import FAST_CONNECTION, FAST_RETRY
from .server import CLIENT_ID, CLIENT_SECRET, FakeCxone


@pytest.fixture
def cxone() -> Iterator[FakeCxone]:
    server = FakeCxone().start()
    yield server
    server.stop()


@pytest.fixture
def events() -> list[RequestEvent]:
    return []


@pytest.fixture
def make_client(
    cxone: FakeCxone, events: list[RequestEvent]
) -> Iterator[Callable[..., CxoneClient]]:
    made: list[CxoneClient] = []

    def make(**overrides: Any) -> CxoneClient:
        options: dict[str, Any] = {
            "connection": FAST_CONNECTION,
            "retry": FAST_RETRY,
            "limiter": RateLimiter(1000),
            "on_request": events.append,
        }
        options.update(overrides)
        base_url = options.pop("base_url", cxone.url)
        secret = options.pop("client_secret", CLIENT_SECRET)
        client = CxoneClient(base_url, CLIENT_ID, secret, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()

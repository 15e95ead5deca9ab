"""When tokens are renewed, through real loopback servers: a call takes its token after
waiting for the rate limiter, so the token cannot expire in the queue (against the
simulator, whose tokens really expire); a lifetime over before its answer arrives does
not make every call ask for a new token."""

from __future__ import annotations

import logging
import time

import pytest

from archiver.cxone import CxoneClient, RateLimiter, RequestEvent, wire
from archiver.policy.model import Connection, Retry
from archiver.simulator import Faults
from tests.cxone.server import FakeCxone
from tests.support import CLIENT_ID, CLIENT_SECRET

CAMPAIGN = "11111111-1111-4111-8111-111111111111"


def test_a_token_is_taken_after_the_limiters_wait_not_before(start_sim):
    # Tokens live 1 s; the client may send one request every 1.25 s. A token taken
    # before the wait would always be expired on arrival (and so would its refresh).
    sim = start_sim(
        Faults(token_lifetime_seconds=1.0), campaign_ids=[CAMPAIGN], attempts_per_campaign=5
    )
    client = CxoneClient(
        sim.base_url,
        CLIENT_ID,
        CLIENT_SECRET,
        connection=Connection(base_url="embedded", timeout_seconds=5, connect_timeout_seconds=2, max_in_flight=1),
        retry=Retry(max_attempts=1, initial_backoff_seconds=0.01, max_backoff_seconds=1),
        limiter=RateLimiter(0.8, adaptive=False, burst=1),
    )
    with client:
        first = client.list_attempts(CAMPAIGN, limit=10, offset=0)
        # The cached token expires while this call waits its turn: it takes a new one.
        second = client.list_attempts(CAMPAIGN, limit=10, offset=0)
    assert len(first) == len(second) == 5
    api = [r for r in sim.requests() if r["path"].startswith("/api/")]
    assert [r["status"] for r in api] == [200, 200], "no call was refused for a stale token"


def _storm_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "not replaced before every call" in r.getMessage()]


def test_a_lifetime_over_before_its_answer_arrives_is_not_renewed_before_every_call(
    cxone: FakeCxone, make_client, events: list[RequestEvent], caplog
):
    # expires_in 0.02 s from a token endpoint that takes 0.1 s to answer: the token was
    # out of date on arrival, and a new one was asked for before every call (ten calls,
    # ten tokens, twice the requests). It is used until the API refuses it.
    cxone.token_lifetime = 0.02
    cxone.token_delay = 0.1
    client = make_client()
    for offset in range(0, 100, 10):
        client.list_attempts(CAMPAIGN, limit=10, offset=offset)
    assert len(cxone.seen("POST", wire.TOKEN_PATH)) == 1
    assert 401 not in [e.status for e in events]
    # Refused at last: one new token, the call sent again, and no second warning.
    cxone.revoke_tokens()
    events.clear()
    for offset in range(0, 50, 10):
        client.list_attempts(CAMPAIGN, limit=10, offset=offset)
    assert [(e.endpoint, e.status) for e in events][:3] == [
        ("list", 401), ("token", 200), ("list", 200)
    ]
    assert len(cxone.seen("POST", wire.TOKEN_PATH)) == 2
    [warning] = _storm_warnings(caplog)
    assert "expires_in 0.02 s" in warning
    assert cxone.url.removeprefix("http://") in warning


def test_a_token_lifetime_longer_than_its_answer_took_is_renewed_ahead_as_before(
    cxone: FakeCxone, make_client, events: list[RequestEvent], caplog
):
    cxone.token_lifetime = 0.3
    cxone.token_delay = 0.1
    client = make_client()
    client.list_attempts(CAMPAIGN, limit=10, offset=0)
    time.sleep(0.3)
    client.list_attempts(CAMPAIGN, limit=10, offset=10)
    assert len(cxone.seen("POST", wire.TOKEN_PATH)) == 2
    assert 401 not in [e.status for e in events]
    assert _storm_warnings(caplog) == []

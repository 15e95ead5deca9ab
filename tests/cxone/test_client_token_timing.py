"""A call takes its token after waiting for the rate limiter, so the token cannot
expire in the queue: against the simulator, whose tokens really expire."""

from __future__ import annotations

from archiver.cxone import CxoneClient, RateLimiter
from archiver.policy.model import Connection, Retry
from archiver.simulator import Faults
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

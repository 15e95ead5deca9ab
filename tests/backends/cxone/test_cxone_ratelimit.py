"""A storm of 429s without Retry-After: every listing finishes and the client's rate adapts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from archiver.simulator.cxone import Behaviour
from tests.backends.cxone.conftest import listed_ids


def test_a_429_storm_without_retry_after_finishes_and_the_rate_adapts(
    start_sim, backend_for
) -> None:
    # The tenant takes 50 requests a second and opens with a storm of 429s; four
    # campaigns are listed at once under a policy that allows ten times that.
    sim = start_sim(Behaviour(invented_rate_limit_rps=50.0), campaigns=4,
                    contacts_per_campaign=100)
    sim.inject(*[429] * 12)
    backend = backend_for(sim, page_size=5, max_requests_per_second=500.0, max_attempts=15,
                          max_in_flight=4)
    with ThreadPoolExecutor(4) as pool:
        listed = dict(zip(sim.campaign_ids,
                          pool.map(lambda cid: listed_ids(backend, cid), sim.campaign_ids),
                          strict=True))

    for cid, ids in listed.items():
        assert sorted(ids) == sorted(sim.contacts(cid)), cid
    calls = [e for e in sim.requests() if e["path"].startswith("/inContactAPI/")]
    limited = [e for e in calls if e["status"] == 429]
    assert len(limited) >= 12
    # The client learnt the tenant's pace instead of hammering it: its rate came down,
    # and once the storm was over few calls were refused.
    assert backend.api.limiter.current_rate < 500.0 / 2
    after_storm = calls[len(calls) // 2:]
    assert sum(e["status"] == 429 for e in after_storm) < len(after_storm) / 10

"""A storm of 429s without Retry-After: every listing finishes and the client's rate adapts."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from archiver.simulator.cxone import Behaviour
from tests.backends.cxone.conftest import api_requests, listed_ids


def test_a_429_storm_without_retry_after_finishes_and_the_rate_adapts(
    start_sim, backend_for
) -> None:
    # The tenant takes 50 requests a second and opens with a storm of 429s; four
    # campaigns are listed at once under a policy that allows ten times that. The
    # limiter needs about half a second to learn the tenant's pace (it does not cut
    # again for 429s of requests already in flight), so the listing is long enough
    # (about four seconds) for "after the storm" to mean after that.
    sim = start_sim(Behaviour(invented_rate_limit_rps=50.0), campaigns=4,
                    contacts_per_campaign=250)
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


def test_a_retry_after_when_there_is_one_holds_every_thread_back(start_sim, backend_for) -> None:
    sim = start_sim(Behaviour(invented_retry_after=1))
    backend = backend_for(sim, max_backoff_seconds=5.0)
    cid = sim.campaign_ids[0]
    backend.dialing(cid)
    sim.inject(429)
    with ThreadPoolExecutor(1) as pool:
        told = pool.submit(backend.dialing, cid)  # this thread's call is answered 429
        # Wait until the client has read the 429 (its limiter is paused), not merely
        # until the server sent it: before that, another thread has no reason to wait.
        # (Should this thread look only after the pause, the retry ends the wait: the
        # other call then goes later still.)
        deadline = time.monotonic() + 30
        while backend.api.limiter.paused_for == 0.0 and not told.done():
            assert time.monotonic() < deadline, "the 429 never reached the client"
            time.sleep(0.005)
        backend.api.get("dispositions", {"skip": "0", "top": "10"})  # another thread's call
        told.result()
    [limited] = [e for e in sim.requests() if e["status"] == 429]
    [other] = api_requests(sim, "dispositions")
    # Neither call went again before the server's second was up (lower bounds: never flaky).
    assert other["at"] - limited["at"] >= 0.95
    retried = [e for e in api_requests(sim, "campaign_skills") if e["seq"] > limited["seq"]]
    assert retried and retried[0]["at"] - limited["at"] >= 0.95

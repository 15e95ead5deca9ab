from __future__ import annotations

import tracemalloc

from archiver.simulator import SimConfig, Simulator

from ._api import body, is_eligible, logged_in

HALF_A_MILLION = 500_000


def test_half_a_million_attempts_page_and_archive_in_modest_memory() -> None:
    tracemalloc.start()
    try:
        config = SimConfig(seed=11, campaigns=1, attempts_per_campaign=HALF_A_MILLION)
        with Simulator(config) as sim:
            api = logged_in(sim)
            cid = sim.campaign_ids[0]
            middle = api.listing(cid, limit=1000, offset=250_000).json()
            assert len(middle) == 1000
            last = api.listing(cid, limit=1000, offset=HALF_A_MILLION - 10).json()
            assert len(last) == 10
            chosen = [r for r in middle if is_eligible(r)][:200]
            assert api.archive(cid, body(cid, chosen)).status_code == 200
            shifted = api.listing(cid, limit=1000, offset=250_000).json()
            assert shifted[0]["id"] not in {r["id"] for r in chosen}
            assert len(api.listing(cid, limit=1000, offset=HALF_A_MILLION - 200 - 10).json()) == 10
            assert len(sim.ledger()) == 200
            current, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A dict per attempt would be hundreds of megabytes; the index is a few.
    assert current < 32 * 1024 * 1024, current

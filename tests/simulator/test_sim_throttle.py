"""``throttle_next``: the next N calls of one kind answered 429, as a rate limit would,
so a test meets a 429 exactly where it wants one instead of by luck."""

from __future__ import annotations

import pytest
import requests

from archiver.simulator import Faults, Simulator

from ._api import SMALL, body, logged_in


@pytest.mark.parametrize("retry_after", [True, False])
def test_the_next_archive_calls_answer_429_then_the_api_answers_again(retry_after: bool) -> None:
    with Simulator(SMALL, Faults(throttle_next={"archive": 2}, retry_after=retry_after)) as sim:
        api = logged_in(sim)
        cid = sim.campaign_ids[0]
        assert api.listing(cid, limit=1).status_code == 200  # other kinds are not throttled
        payload = body(cid, api.eligible_records(cid)[:2])
        answers = [api.archive(cid, payload, key="k1") for _ in range(3)]
        assert [a.status_code for a in answers] == [429, 429, 200]
        for answer in answers[:2]:
            assert answer.json()["error"] == "rate_limited"
            if retry_after:
                assert answer.headers["Retry-After"] == "1"  # whole seconds, as HTTP says
            else:
                assert "Retry-After" not in answer.headers
        assert sim.stats()["rate_limited"] == 2
        assert set(sim.ledger().values()) == {1}, "a throttled call archives nothing"


def test_throttle_counts_again_from_when_faults_are_set_over_http() -> None:
    with Simulator(SMALL) as sim:
        api = logged_in(sim)
        cid = sim.campaign_ids[0]
        url = f"{sim.base_url}/_sim/faults"
        assert requests.post(url, json={"throttle_next": {"list": 1}}, timeout=5).status_code == 200
        assert [api.listing(cid, limit=1).status_code for _ in range(2)] == [429, 200]
        for bad in ({"throttle_next": {"lists": 1}}, {"throttle_next": {"list": -1}},
                    {"throttle_next": {"list": True}}, {"throttle_next": [1]}):
            assert requests.post(url, json=bad, timeout=5).status_code == 400, bad

from __future__ import annotations

import pytest
import requests

from archiver.simulator import Faults, Simulator

from ._api import SMALL, body, logged_in


@pytest.mark.parametrize("retry_after", [True, False])
def test_rate_limit_answers_429(retry_after: bool) -> None:
    with Simulator(SMALL, Faults(rate_limit_rps=2, retry_after=retry_after)) as sim:
        api = logged_in(sim)  # spends one of the two tokens in the bucket
        cid = sim.campaign_ids[0]
        answers = [api.listing(cid, limit=1) for _ in range(10)]
        limited = [a for a in answers if a.status_code == 429]
        assert limited, [a.status_code for a in answers]
        assert {a.status_code for a in answers} <= {200, 429}
        for answer in limited:
            assert answer.json()["error"] == "rate_limited"
            if retry_after:
                assert int(answer.headers["Retry-After"]) >= 1
            else:
                assert "Retry-After" not in answer.headers
        assert sim.stats()["rate_limited"] == len(limited)


def test_rate_limit_applies_to_the_token_call_too() -> None:
    with Simulator(SMALL, Faults(rate_limit_rps=0.01)) as sim:
        api = logged_in(sim)
        assert api.token().status_code == 429


def test_injected_errors_are_transient_statuses() -> None:
    with Simulator(SMALL, Faults(error_5xx_rate=1.0)) as sim:
        url = f"{sim.base_url}/oauth/token"
        statuses = {requests.post(url, data={}, timeout=5).status_code for _ in range(30)}
        assert statuses <= {500, 502, 503}
        assert len(statuses) > 1
        assert sim.stats()["injected_errors"] == 30
        sim.set_faults(Faults())
        logged_in(sim)


def test_error_rate_hits_about_its_share() -> None:
    with Simulator(SMALL, Faults(error_5xx_rate=0.3)) as sim:
        url = f"{sim.base_url}/oauth/token"
        session = requests.Session()
        failures = sum(session.post(url, data={}, timeout=5).status_code >= 500 for _ in range(200))
        assert 20 < failures < 110


def test_hung_answer_times_out_after_the_call_took_effect() -> None:
    with Simulator(SMALL) as sim:
        api = logged_in(sim)
        cid = sim.campaign_ids[0]
        payload = body(cid, api.eligible_records(cid)[:2])
        sim.set_faults(Faults(hang_rate=1.0, hang_seconds=30))
        with pytest.raises(requests.exceptions.ReadTimeout):
            api.archive(cid, payload, key="hung", timeout=0.3)
        # The archive was committed before the answer stalled ...
        assert set(sim.ledger().values()) == {1}
        assert sim.stats()["hangs"] == 1
        sim.set_faults(Faults())
        # ... so a retry with the same key is a replay, not a second archive.
        retry = api.archive(cid, payload, key="hung")
        assert retry.status_code == 200
        assert retry.headers["Idempotent-Replayed"] == "true"
        assert set(sim.ledger().values()) == {1}
    # stop() returned although a hung answer was still pending.


def test_latency_is_added_without_breaking_answers() -> None:
    with Simulator(SMALL, Faults(latency_ms=20)) as sim:
        api = logged_in(sim)
        assert api.listing(sim.campaign_ids[0], limit=3).status_code == 200


def test_faults_change_at_runtime_over_http() -> None:
    with Simulator(SMALL) as sim:
        api = logged_in(sim)
        url = f"{sim.base_url}/_sim/faults"
        resp = requests.post(url, json={"fail_status": {sim.campaign_ids[0]: 403}}, timeout=5)
        assert resp.status_code == 200
        assert resp.json()["fail_status"] == {sim.campaign_ids[0]: 403}
        assert api.listing(sim.campaign_ids[0]).status_code == 403
        assert requests.get(url, timeout=5).json()["fail_status"] == {sim.campaign_ids[0]: 403}
        for bad in ({"no_such_fault": 1}, {"hang_rate": 2}, {"latency_ms": "slow"}, [1]):
            assert requests.post(url, json=bad, timeout=5).status_code == 400
        requests.post(url, json={"active_campaigns": [sim.campaign_ids[1]]}, timeout=5)
        cid = sim.campaign_ids[1]
        assert api.archive(cid, body(cid, api.eligible_records(cid)[:1])).status_code == 409
        assert sim.campaigns()[cid]["status"] == "ACTIVE"

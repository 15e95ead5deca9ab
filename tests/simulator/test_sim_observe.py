from __future__ import annotations

import threading
import time

import requests

from archiver.simulator import SimConfig, Simulator

from ._api import Api, body, logged_in


def test_request_log_shows_what_was_sent_without_secrets(api: Api) -> None:
    cid = api.sim.campaign_ids[0]
    payload = body(cid, api.eligible_records(cid)[:2])
    api.archive(cid, payload, key="key-1")
    log = api.sim.requests()
    token_call = log[0]
    assert token_call["kind"] == "token"
    assert token_call["body"] == {"grant_type": "client_credentials", "client_id": "demo",
                                  "client_secret": "<redacted>"}
    archive = log[-1]
    assert archive["method"] == "POST"
    assert archive["path"] == f"/api/v2/campaigns/{cid}/contacts/archive"
    assert archive["body"] == payload
    assert archive["headers"]["Idempotency-Key"] == "key-1"
    assert archive["headers"]["Authorization"] == "Bearer <redacted>"
    assert archive["status"] == 200
    listing = log[1]
    assert listing["query"] == {"status": "completed", "limit": "1000", "offset": "0"}
    over_http = requests.get(f"{api.base}/_sim/requests", params={"limit": 1}, timeout=5).json()
    assert over_http == [archive]


def test_request_log_is_capped_and_can_be_reset() -> None:
    with Simulator(SimConfig(campaigns=1, attempts_per_campaign=5, request_log_size=3)) as sim:
        api = logged_in(sim)
        for offset in range(5):
            api.listing(sim.campaign_ids[0], offset=offset)
        assert [e["query"]["offset"] for e in sim.requests()] == ["2", "3", "4"]
        assert requests.post(f"{sim.base_url}/_sim/reset-log", timeout=5).status_code == 204
        assert sim.requests() == []


def test_kept_alive_connection_is_reused(api: Api) -> None:
    for _ in range(20):
        api.listing(api.sim.campaign_ids[0], limit=5)
    stats = api.sim.stats()
    assert stats["connections_opened"] == 1
    assert stats["requests"]["GET list 200"] == 20


def test_new_session_per_call_shows_as_new_connections(sim: Simulator) -> None:
    for _ in range(3):
        Api(sim).token()
    assert sim.stats()["connections_opened"] == 3


def test_max_in_flight_counts_concurrent_calls(sim: Simulator) -> None:
    from archiver.simulator import Faults

    sim.set_faults(Faults(latency_ms=300))
    barrier = threading.Barrier(4)

    def call() -> None:
        barrier.wait()
        Api(sim).token()

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = sim.stats()
    assert stats["max_in_flight"] >= 2
    # A handler counts itself out just after its answer is written, so the client
    # can be a moment ahead: the counter must come back to zero, soon.
    deadline = time.monotonic() + 5
    while sim.stats()["in_flight"] != 0:
        assert time.monotonic() < deadline, "in_flight never came back to 0"
        time.sleep(0.01)


def test_observability_endpoints_need_no_token(api: Api) -> None:
    cid = api.sim.campaign_ids[0]
    api.archive(cid, body(cid, api.eligible_records(cid)[:1]))
    plain = requests.Session()
    for name in ("ledger", "stats", "campaigns", "requests", "webhooks", "faults"):
        assert plain.get(f"{api.base}/_sim/{name}", timeout=5).status_code == 200
    stats = plain.get(f"{api.base}/_sim/stats", timeout=5).json()
    assert stats["archived"] == 1
    assert stats["tokens_issued"] == 1
    assert stats["internal_errors"] == 0
    assert stats["campaigns"][cid]["status"] == "IDLE"
    campaigns = plain.get(f"{api.base}/_sim/campaigns", timeout=5).json()
    assert campaigns[cid]["archived"] == 1
    assert campaigns[cid]["remaining"] == 399
    assert plain.get(f"{api.base}/_sim/nothing", timeout=5).status_code == 404

"""The cxone personality itself: standalone, observable over HTTP, strict about requests."""

from __future__ import annotations

import signal
import subprocess
import sys

import requests

from tests.backends.cxone.test_cxone_http import _raw, _token


def test_it_runs_standalone_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "archiver.simulator.cxone", "--port", "0", "--churn", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("listening on http://127.0.0.1:")
        base = first.removeprefix("listening on ")
        found = requests.get(f"{base}/.well-known/cxone-configuration",
                             params={"tenantId": "5c2b8f3e-7d41-4b1a-9e0f-2a6c8d4e1b77"},
                             timeout=5)
        assert found.json()["api_endpoint"] == base
        assert requests.get(f"{base}/_sim/stats", timeout=5).json()["churned"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "simulator stopped" in out


def test_observation_endpoints_answer_what_the_handle_says(start_sim, backend_for) -> None:
    sim = start_sim(prospects_per_list=10)
    cid, list_id = sim.campaign_ids[0], sim.call_list_ids[0]
    backend = backend_for(sim, source_type="call_list_attempts", call_list=list_id,
                          actions={cid: "retire"})
    listed = [r for p in backend.pages(cid, since=None) for r in p.records]
    backend.act(cid, listed[:3], idempotency_key="k")  # type: ignore[arg-type]
    backend.pause(cid, backend.dialing(cid) or {})

    def view(name: str) -> object:
        return requests.get(f"{sim.base_url}/_sim/{name}", timeout=5).json()

    assert view("ledger") == sim.ledger() and sim.ledger()["removed"]
    assert view("skills") == sim.skills()
    assert view(f"contacts/{cid}") == sim.contacts(cid)
    logged = view("requests")
    assert isinstance(logged, list) and {e["kind"] for e in logged} >= {"token", "remove"}
    assert requests.get(f"{sim.base_url}/_sim/nothing", timeout=5).status_code == 404


def test_off_contract_requests_are_refused(start_sim) -> None:
    sim = start_sim()
    headers = {"Authorization": f"Bearer {_token(sim)}", "Accept": "application/json"}
    api = "/inContactAPI/services/v34.0/"
    status, _, body = _raw(sim, api + "contacts/completed?campaignID=1834501", headers)
    assert status == 400 and b"unknown query parameter" in body
    status, _, _ = _raw(sim, api + "contacts/completed?orderBy=whenever", headers)
    assert status == 400
    assert _raw(sim, api + "skills/40001/stop", headers, method="GET")[0] == 405
    assert _raw(sim, api + "nowhere", headers)[0] == 404
    status, _, body = _raw(sim, api + "lists/call-lists/4412/removeProspects",
                           {**headers, "Content-Type": "application/json"}, method="DELETE",
                           body='{"prospectsToRemove": [{"externalId": "P1", "extra": 1}]}')
    assert status == 400
    status, _, body = _raw(sim, "/auth/token", {"Content-Type": "application/json"},
                           method="POST", body="{}")
    assert status == 400 and b"invalid_request" in body
    assert _raw(sim, "/.well-known/cxone-configuration?tenantId=nobody", {})[0] == 404

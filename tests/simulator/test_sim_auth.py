from __future__ import annotations

import time

import pytest
import requests

from archiver.simulator import Faults, SimConfig, Simulator

from ._api import SMALL, Api, logged_in


def test_token_is_issued_for_the_configured_client(sim: Simulator) -> None:
    resp = Api(sim).token()
    assert resp.status_code == 200
    data = resp.json()
    assert data["token_type"] == "bearer"
    assert data["expires_in"] == 3600
    assert len(data["access_token"]) >= 32
    assert Api(sim).token().json()["access_token"] != data["access_token"]
    assert sim.stats()["tokens_issued"] == 2


@pytest.mark.parametrize(
    "form",
    [{"client_secret": "wrong"}, {"client_id": "someone-else"}, {"grant_type": "password"}],
)
def test_wrong_client_or_grant_is_401_invalid_client(sim: Simulator, form: dict[str, str]) -> None:
    resp = Api(sim).token(**form)
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"


def test_malformed_token_form_is_400(sim: Simulator) -> None:
    url = f"{sim.base_url}/oauth/token"
    missing = requests.post(url, data={"grant_type": "client_credentials"}, timeout=5)
    as_json = requests.post(url, json={"grant_type": "client_credentials", "client_id": "demo",
                                       "client_secret": "demo-secret"}, timeout=5)
    assert missing.status_code == 400
    assert as_json.status_code == 400


def test_api_calls_need_a_known_bearer_token(sim: Simulator) -> None:
    cid = sim.campaign_ids[0]
    url = f"{sim.base_url}/api/v2/campaigns/{cid}/attempts?status=completed&limit=10&offset=0"
    assert requests.get(url, timeout=5).status_code == 401
    unknown = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert unknown.status_code == 401
    assert "invalid_token" in unknown.headers["WWW-Authenticate"]
    basic = requests.get(url, headers={"Authorization": "Basic ZGVtbzpkZW1v"}, timeout=5)
    assert basic.status_code == 401
    patch = requests.patch(f"{sim.base_url}/api/v2/campaigns/{cid}", json={"status": "PAUSED"},
                           timeout=5)
    assert patch.status_code == 401
    assert sim.campaigns()[cid]["status"] == "IDLE"
    assert sim.stats()["auth_failures"] == 4


def test_expired_token_is_refused_and_a_new_one_works() -> None:
    config = SimConfig(seed=3, campaigns=1, attempts_per_campaign=10)
    # A lifetime long enough that a busy machine still lists before it ends.
    with Simulator(config, Faults(token_lifetime_seconds=3.0)) as sim:
        api = logged_in(sim)
        cid = sim.campaign_ids[0]
        assert api.listing(cid).status_code == 200
        time.sleep(3.1)
        expired = api.listing(cid)
        assert expired.status_code == 401
        assert expired.json()["detail"] == "token expired"
        api.login()
        assert api.listing(cid).status_code == 200


def test_token_lifetime_can_change_at_runtime() -> None:
    with Simulator(SMALL) as sim:
        sim.set_faults(Faults(token_lifetime_seconds=120))
        assert Api(sim).token().json()["expires_in"] == 120

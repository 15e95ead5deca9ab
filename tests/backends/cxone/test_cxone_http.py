"""Discovery, the pinned API version, Accept, error bodies and retries, through real sockets."""

from __future__ import annotations

import base64
import http.client
import json
from urllib.parse import urlencode, urlsplit

import pytest

from archiver.backends.cxone import wire
from archiver.errors import ServerError, TerminalApiError, Unreachable
from archiver.simulator.cxone import Behaviour
from tests.backends.cxone.conftest import api_requests
from tests.support import refused_port


def test_discovery_finds_the_api_host_and_calls_go_under_the_pinned_version(
    start_sim, backend_for
) -> None:
    sim = start_sim()
    backend = backend_for(sim, api_version="v33.0")
    backend.dialing(sim.campaign_ids[0])
    backend.dialing(sim.campaign_ids[0])

    [found] = api_requests(sim, "discovery")
    assert found["query"] == {"tenantId": sim.config.tenant_id}
    assert "Authorization" not in found["headers"]
    calls = [e for e in sim.requests() if e["kind"] not in ("discovery", "token")]
    assert calls and all(e["path"].startswith("/inContactAPI/services/v33.0/") for e in calls)


def test_an_unknown_tenant_is_a_terminal_error_naming_it(start_sim, backend_for) -> None:
    sim = start_sim()
    backend = backend_for(sim, tenant_id="00000000-0000-0000-0000-000000000000")
    with pytest.raises(TerminalApiError, match=r"tenant 00000000-.* is unknown") as caught:
        backend.dialing(sim.campaign_ids[0])
    assert caught.value.status == 404
    assert not api_requests(sim, "token")


def test_base_url_overrides_discovery(start_sim, backend_for) -> None:
    sim = start_sim()
    backend = backend_for(sim, base_url=sim.base_url)
    assert backend.dialing(sim.campaign_ids[0]) is not None
    assert not api_requests(sim, "discovery")


def test_every_api_call_asks_for_json(start_sim, backend_for) -> None:
    sim = start_sim()
    backend = backend_for(sim, page_size=50)
    list(backend.pages(sim.campaign_ids[0], since=None))
    calls = [e for e in sim.requests() if e["path"].startswith("/inContactAPI/")]
    assert calls and all(e["headers"].get("Accept") == "application/json" for e in calls)


def _raw(sim, path: str, headers: dict[str, str], *, method: str = "GET", body: str = ""):
    parts = urlsplit(sim.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        # http.client sends no Accept header unless told to: a raw request.
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _token(sim) -> str:
    basic = base64.b64encode(f"{sim.config.client_id}:{sim.config.client_secret}".encode())
    form = urlencode({"grant_type": "password", "username": sim.config.access_key_id,
                      "password": sim.config.access_key_secret})
    status, _, body = _raw(sim, "/auth/token", {
        "Authorization": f"Basic {basic.decode()}",
        "Content-Type": "application/x-www-form-urlencoded",
    }, method="POST", body=form)
    assert status == 200
    return str(json.loads(body)["access_token"])


@pytest.mark.parametrize("accept", [None, "*/*", "text/html"])
def test_without_accept_json_the_api_answers_406(start_sim, accept) -> None:
    sim = start_sim()
    headers = {"Authorization": f"Bearer {_token(sim)}"}
    if accept:
        headers["Accept"] = accept
    path = f"/inContactAPI/services/v34.0/campaigns/{sim.campaign_ids[0]}/skills"
    status, answer_headers, body = _raw(sim, path, headers)
    assert status == 406
    assert body == b"No known way to render data"
    assert answer_headers["icStatusDescription"] == "No known way to render data"
    headers["Accept"] = "application/json"
    assert _raw(sim, path, headers)[0] == 200


@pytest.mark.parametrize(
    ("shape", "text"),
    [
        ("acd", "Injected: injected status 400"),
        ("platform", "Injected: injected status 400"),
        ("message", "injected status 400"),
    ],
)
def test_each_error_body_shape_reaches_the_message(start_sim, backend_for, shape, text) -> None:
    # Without the icStatusDescription header: the text can only come from the body.
    sim = start_sim(Behaviour(error_shape=shape, ic_status_header=False))
    backend = backend_for(sim)
    backend.dialing(sim.campaign_ids[0])  # logged in; the next call gets the injected answer
    sim.inject(400)
    with pytest.raises(TerminalApiError) as caught:
        backend.dialing(sim.campaign_ids[0])
    assert caught.value.status == 400
    assert text in str(caught.value)
    assert "campaigns/1834501/skills" in str(caught.value)


def test_the_ic_status_header_alone_explains_an_error() -> None:
    headers = {"icStatusDescription": "Skill is not a Personal Connection skill"}
    assert wire.error_text(None, headers) == "Skill is not a Personal Connection skill"
    body = {"error": "Conflict", "error_description": "busy"}
    assert wire.error_text(body, {"icStatusDescription": "busy"}) == "Conflict: busy"
    assert wire.error_text(body, headers) == (
        "Conflict: busy - Skill is not a Personal Connection skill"
    )


def test_transient_failures_are_retried_and_a_429_has_no_retry_after(start_sim, backend_for) -> None:
    sim = start_sim()
    backend = backend_for(sim)
    backend.dialing(sim.campaign_ids[0])
    sim.inject(503, 429, 502)
    assert backend.dialing(sim.campaign_ids[0]) is not None
    statuses = [e["status"] for e in api_requests(sim, "campaign_skills")]
    assert statuses == [200, 503, 429, 502, 200]


def test_retries_run_out_as_a_server_error(start_sim, backend_for) -> None:
    sim = start_sim()
    backend = backend_for(sim, max_attempts=3)
    backend.dialing(sim.campaign_ids[0])
    sim.inject(500, 500, 500, 500)
    with pytest.raises(ServerError, match="HTTP 500"):
        backend.dialing(sim.campaign_ids[0])
    assert len(api_requests(sim, "campaign_skills")) == 1 + 3


def test_the_simulator_never_sends_retry_after_on_429(start_sim) -> None:
    sim = start_sim(Behaviour(invented_rate_limit_rps=1.0))
    headers = {"Authorization": f"Bearer {_token(sim)}", "Accept": "application/json"}
    path = "/inContactAPI/services/v34.0/skills/40001"
    answers = [_raw(sim, path, headers) for _ in range(4)]
    limited = [h for status, h, _ in answers if status == 429]
    assert limited and not any("Retry-After" in h for h in limited)
    assert all("icStatusDescription" in h for h in limited)


def test_an_unreachable_auth_host_is_named_in_words(start_sim, backend_for) -> None:
    """Before: "connection failed: Tracked(host=...): Max retries exceeded ... (Caused by
    NewConnectionError(...", where the campaign-archive client said what this says."""
    sim = start_sim()
    with refused_port() as port:
        backend = backend_for(sim, auth_url=f"http://127.0.0.1:{port}", max_attempts=1)
        with pytest.raises(Unreachable) as caught:
            backend.dialing(sim.campaign_ids[0])
    message = str(caught.value)
    assert message == f"cannot reach 127.0.0.1:{port}: connection refused", message


@pytest.mark.parametrize("suffix", ["/?area=na1", "/#api", "?"])
def test_a_discovered_api_endpoint_with_a_query_or_fragment_is_refused(
    start_sim, backend_for, suffix
) -> None:
    """Each call's path was appended to it, so landed in the query or the fragment:
    every call went to the host's root, and its 404 was reported against the call
    ("HTTP 404 from GET campaigns/1834501/skills: NotFound: no route for /")."""
    sim = start_sim()
    found = {"api_endpoint": sim.base_url + suffix, "tenantId": sim.config.tenant_id}
    sim.set(served_bodies={"discovery": (200, json.dumps(found).encode())})
    with pytest.raises(TerminalApiError, match="api_endpoint has a query or a fragment") as caught:
        backend_for(sim).dialing(sim.campaign_ids[0])
    assert "cxone-configuration" in str(caught.value)
    assert not [e for e in sim.requests() if e["kind"] not in ("discovery", "token")]


def test_a_discovery_answer_about_another_tenant_is_refused(start_sim, backend_for) -> None:
    """The discovery answer names the tenant it describes: one about another tenant
    (a cache or a proxy that ignores the query) would send every call to that
    tenant's API host."""
    sim = start_sim()
    other = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
    found = {"api_endpoint": sim.base_url, "tenantId": other}
    sim.set(served_bodies={"discovery": (200, json.dumps(found).encode())})
    with pytest.raises(TerminalApiError, match=f"answered for tenant {other}"):
        backend_for(sim).dialing(sim.campaign_ids[0])
    assert not [e for e in sim.requests() if e["kind"] not in ("discovery", "token")]

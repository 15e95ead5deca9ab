"""Every request the cxone backend sent, and the simulator's answers, against
schemas/cxone.openapi.yaml (openapi-core).

The backend works a tenant through every operation it knows (listing with churn,
retries, a refreshed and a revoked token, dialing, pause and resume, calling-list
attempts, retire); the simulator's request log is then validated request by
request, so a drift in the backend's wire format fails here even where the
simulator lets it pass. The simulator's own answers are checked the same way.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from archiver.simulator.cxone import Behaviour
from tests.backends.cxone.test_cxone_http import _token
from tests.contract._openapi import (
    BuiltRequest,
    LiveResponse,
    LoggedRequest,
    declared,
    documented_statuses,
    load_spec,
    path_template,
    request_errors,
    response_errors,
    status_documented,
)
from tests.support import REPO

SPEC_PATH = REPO / "schemas" / "cxone.openapi.yaml"
API = "/inContactAPI/services/{apiVersion}/"
OPERATIONS = {
    ("post", "/auth/token"),
    ("get", "/.well-known/cxone-configuration"),
    ("get", API + "contacts/completed"),
    ("get", API + "dispositions"),
    ("get", API + "lists/call-lists/{listId}/attempts"),
    ("delete", API + "lists/call-lists/{listId}/removeProspects"),
    ("get", API + "campaigns/{campaignId}/skills"),
    ("get", API + "skills/{skillId}"),
    ("post", API + "skills/{skillId}/stop"),
    ("post", API + "skills/{skillId}/start"),
}


@pytest.fixture(scope="module")
def spec() -> OpenAPI:
    return load_spec(SPEC_PATH)


def test_the_spec_is_valid_openapi_3_1_and_names_exactly_the_backends_calls() -> None:
    document = yaml.safe_load(SPEC_PATH.read_text())
    validate(document, cls=OpenAPIV31SpecValidator)
    assert {(m, p) for p, item in document["paths"].items() for m in item if m != "parameters"} == (
        OPERATIONS
    )


def _work_the_tenant(sim, backend_for) -> None:
    cid, list_id = sim.campaign_ids[0], sim.call_list_ids[0]
    sim.set(remove_failures={"P4412-0003": "ProspectLocked"})
    contacts = backend_for(sim, page_size=40)
    dialing = contacts.dialing(cid)
    assert dialing is not None
    contacts.pause(cid, dialing)
    for n, _page in enumerate(contacts.pages(cid, since=None)):
        if n == 2:
            sim.revoke_tokens()  # a 401, then a fresh login
        if n == 4:
            time.sleep(1.1)  # the token nears expiry: a refresh_token grant
    contacts.resume(cid, dialing)
    retiring = backend_for(sim, source_type="call_list_attempts", call_list=list_id,
                           actions={cid: "retire"}, page_size=30)
    listed = [r for page in retiring.pages(cid, since=None) for r in page.records]
    for i in range(0, len(listed), 25):
        retiring.act(cid, listed[i: i + 25], idempotency_key=f"k{i}")  # type: ignore[arg-type]


def test_every_request_the_backend_sends_matches_the_contract(start_sim, backend_for, spec) -> None:
    # Seeded 5xx answers make the backend resend, so retried requests are checked too.
    sim = start_sim(Behaviour(churn_per_request=2, error_5xx_rate=0.1,
                              token_lifetime_seconds=1.0), prospects_per_list=40)
    _work_the_tenant(sim, backend_for)

    entries = [e for e in sim.requests() if not e["path"].startswith("/_sim/")]
    seen: Counter[tuple[str, str]] = Counter()
    problems: list[str] = []
    for entry in entries:
        where = f"#{entry['seq']} {entry['method']} {entry['path']}?{entry['query_string']}"
        method = entry["method"].lower()
        template = path_template(spec, entry["path"])
        if template is None:
            problems.append(f"{where}: no such path in the contract")
            continue
        seen[(method, template)] += 1
        problems.extend(f"{where}:\n{e}" for e in request_errors(spec, LoggedRequest(sim.base_url, entry)))
        problems.extend(f"{where}: {p}" for p in _beyond_schema(spec, method, template, entry))
    assert not problems, f"{len(problems)} contract problem(s):\n\n" + "\n\n".join(problems[:8])
    assert set(seen) == OPERATIONS, f"operations seen: {dict(seen)}"
    statuses = Counter(e["status"] for e in entries)
    assert statuses[401] >= 1 and any(s >= 500 for s in statuses)
    grants = Counter(e["body"]["grant_type"] for e in entries if e["kind"] == "token")
    assert grants["password"] >= 2 and grants["refresh_token"] >= 1


def _beyond_schema(spec: OpenAPI, method: str, template: str, entry: dict[str, Any]) -> list[str]:
    """What openapi-core leaves unchecked: unknown or repeated query parameters, the
    Accept header (OpenAPI ignores a parameter named Accept), and the answer's status
    being one the contract lists."""
    problems = []
    names = [k for k, _ in parse_qsl(entry["query_string"], keep_blank_values=True)]
    unknown = sorted(set(names) - declared(spec, method, template, "query"))
    if unknown:
        problems.append(f"undeclared query parameter(s) {unknown}")
    repeated = sorted(n for n, count in Counter(names).items() if count > 1)
    if repeated:
        problems.append(f"repeated query parameter(s) {repeated}")
    if template.startswith(API) and entry["headers"].get("Accept") != "application/json":
        problems.append(f"Accept is {entry['headers'].get('Accept')!r}, not application/json")
    if not status_documented(entry["status"], documented_statuses(spec, method, template)):
        problems.append(f"answered {entry['status']}, a status the contract does not list")
    if entry["status"] in (400, 406):
        problems.append(f"the simulator refused the request ({entry['status']})")
    return problems


# -- the check can fail ----------------------------------------------------------

_AUTH = {"Authorization": "Bearer t0k3n"}
_COMPLETED = "/inContactAPI/services/v34.0/contacts/completed"
_GOOD_QUERY = {"campaignId": "1834501", "updatedSince": "2026-09-01T00:00:00.000Z",
               "orderBy": "lastUpdateTime asc", "skip": "0", "top": "100"}
_REMOVE = "/inContactAPI/services/v34.0/lists/call-lists/4412/removeProspects"


def test_the_backends_completed_contacts_query_passes(spec) -> None:
    assert request_errors(spec, BuiltRequest("GET", _COMPLETED, query=_GOOD_QUERY,
                                             headers=_AUTH)) == []


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({**_GOOD_QUERY, "updatedSince": "2026-09-01T00:00:00+02:00"}, id="not-Z"),
        pytest.param({**_GOOD_QUERY, "orderBy": "contactId asc"}, id="other-order"),
        pytest.param({**_GOOD_QUERY, "top": "20000"}, id="top-too-large"),
        pytest.param({k: v for k, v in _GOOD_QUERY.items() if k != "campaignId"}, id="no-campaign"),
    ],
)
def test_completed_contacts_queries_outside_the_contract_fail(spec, query) -> None:
    assert request_errors(spec, BuiltRequest("GET", _COMPLETED, query=query, headers=_AUTH))


@pytest.mark.parametrize(
    ("body", "fails"),
    [
        ({"prospectsToRemove": [{"externalId": "P4412-0001"}]}, False),
        ({"prospectsToRemove": []}, True),
        ({"prospectsToRemove": [{"externalId": "P1", "listId": "4412"}]}, True),
        ({"prospects": [{"externalId": "P1"}]}, True),
    ],
)
def test_remove_prospects_bodies(spec, body, fails) -> None:
    request = BuiltRequest("DELETE", _REMOVE, headers=_AUTH, json_body=body)
    assert bool(request_errors(spec, request)) == fails


# -- the simulator's answers ------------------------------------------------------


def test_the_simulators_answers_match_the_contract(start_sim, spec) -> None:
    sim = start_sim()
    base = sim.base_url
    api = f"{base}/inContactAPI/services/v34.0/"
    auth = {"Authorization": f"Bearer {_token(sim)}", "Accept": "application/json"}
    cid, list_id = sim.campaign_ids[0], sim.call_list_ids[0]
    calls = [
        requests.Request("GET", f"{base}/.well-known/cxone-configuration",
                         params={"tenantId": sim.config.tenant_id}),
        requests.Request("POST", f"{base}/auth/token",
                         auth=(sim.config.client_id, sim.config.client_secret),
                         data={"grant_type": "password", "username": sim.config.access_key_id,
                               "password": sim.config.access_key_secret}),
        requests.Request("POST", f"{base}/auth/token",
                         auth=(sim.config.client_id, "wrong-secret-0000"),
                         data={"grant_type": "password", "username": "x", "password": "y"}),
        requests.Request("GET", api + "contacts/completed", headers=auth, params=_GOOD_QUERY),
        requests.Request("GET", api + "contacts/completed", headers=auth,
                         params={**_GOOD_QUERY, "updatedSince": "2099-01-01T00:00:00.000Z"}),
        requests.Request("GET", api + "dispositions", headers=auth, params={"skip": 0, "top": 100}),
        requests.Request("GET", api + f"lists/call-lists/{list_id}/attempts", headers=auth,
                         params={"finalized": "true", "skip": 0, "top": 50}),
        requests.Request("GET", api + f"campaigns/{cid}/skills", headers=auth),
        requests.Request("GET", api + "skills/40001", headers=auth),
        requests.Request("POST", api + "skills/40001/stop", headers=auth, params={"force": "false"}),
        requests.Request("POST", api + "skills/40001/start", headers=auth),
        requests.Request("DELETE", api + f"lists/call-lists/{list_id}/removeProspects", headers=auth,
                         data=json.dumps({"prospectsToRemove": [{"externalId": "P4412-0001"},
                                                                {"externalId": "nobody"}]}),
                         ),
        requests.Request("GET", api + "skills/40001", headers={"Accept": "application/json"}),
    ]
    calls[-2].headers["Content-Type"] = "application/json"
    problems: list[str] = []
    statuses = []
    with requests.Session() as session:
        for call in calls:
            prepared = session.prepare_request(call)
            answer = session.send(prepared, allow_redirects=False)
            statuses.append(answer.status_code)
            problems.extend(f"{call.method} {call.url}: {e}" for e in response_errors(
                spec, RequestsOpenAPIRequest(prepared), LiveResponse(answer)))
    assert not problems, "\n\n".join(problems[:6])
    assert statuses == [200, 200, 400, 200, 204, 200, 200, 200, 200, 202, 202, 200, 401]

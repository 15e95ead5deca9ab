"""The client's real traffic, and the simulator's real answers, against the OpenAPI contract.

``archiver run`` goes through a strict simulator in a subprocess; every API request
the simulator logged is then validated against schemas/cxone-archive.openapi.yaml
with openapi-core, so a drift in the client's wire format (a renamed key, a
missing header, an out-of-range value) fails here even where the simulator
would let it pass.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote

import pytest
import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from archiver.simulator import Faults
from tests.contract._openapi import (
    SPEC_PATH,
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
from tests.support import (
    APPROVED,
    CLIENT_ID,
    CLIENT_SECRET,
    policy_dict,
    run_cli,
    sim_env,
    write_policy,
)

CAMPAIGNS = [
    "aaaaaaaa-1111-4111-8111-111111111111",
    "bbbbbbbb-2222-4222-8222-222222222222",
]
ACTIVE = CAMPAIGNS[1]
TOKEN = "/oauth/token"
ATTEMPTS = "/api/v2/campaigns/{campaignId}/attempts"
ARCHIVE = "/api/v2/campaigns/{campaignId}/contacts/archive"
CAMPAIGN = "/api/v2/campaigns/{campaignId}"
OPERATIONS = {("post", TOKEN), ("get", ATTEMPTS), ("post", ARCHIVE), ("patch", CAMPAIGN)}


@pytest.fixture(scope="module")
def spec() -> OpenAPI:
    return load_spec()


# -- the document itself ---------------------------------------------------------


def test_spec_is_a_valid_openapi_3_1_document() -> None:
    document = yaml.safe_load(SPEC_PATH.read_text())
    assert document["openapi"].startswith("3.1")
    validate(document, cls=OpenAPIV31SpecValidator)
    assert {(m, p) for p, item in document["paths"].items() for m in item if m != "parameters"} == (
        OPERATIONS
    )


# -- the client's real requests --------------------------------------------------


def test_every_request_the_client_sends_matches_the_contract(tmp_path, start_sim, spec) -> None:
    # One campaign dials, so the run pauses and resumes it; injected 5xx answers make
    # the client resend, so retried requests are checked too.
    sim = start_sim(
        Faults(active_campaigns=[ACTIVE], error_5xx_rate=0.1),
        campaign_ids=CAMPAIGNS,
        attempts_per_campaign=600,
        seed=23,
    )
    doc = policy_dict(CAMPAIGNS)
    doc["source"]["page_size"] = 100
    doc["batch"]["max_items"] = 100
    policy = write_policy(tmp_path / "p.yaml", doc)

    result = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "state")], sim_env(sim), timeout=60
    )

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
        for error in request_errors(spec, LoggedRequest(sim.base_url, entry)):
            problems.append(f"{where}:\n{error}")
        problems.extend(f"{where}: {p}" for p in _beyond_schema(spec, method, template, entry))
    # Contract problems first: they explain a failed run better than its exit code.
    assert not problems, (
        f"{len(problems)} contract problem(s); the first ones:\n\n"
        + "\n\n".join(problems[:8])
        + "\n\nrun stderr:\n"
        + result.stderr[-2000:]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    eligible = set().union(*(sim.eligible_ids(c, set(APPROVED)) for c in CAMPAIGNS))
    assert set(sim.ledger()) == eligible

    assert set(seen) == OPERATIONS, f"operations seen: {dict(seen)}"
    patches = [e["body"]["status"] for e in entries if e["method"] == "PATCH"]
    assert patches.count("PAUSED") >= 1 and patches.count("ACTIVE") >= 1
    assert any(e["status"] == 409 for e in entries), "the active campaign was never refused"
    # The fault generator is seeded, so this holds on every run, not by luck.
    assert any(e["status"] >= 500 for e in entries), "no call was answered 5xx and resent"


def _beyond_schema(spec: OpenAPI, method: str, template: str, entry: dict[str, Any]) -> list[str]:
    """What openapi-core leaves unchecked: unknown or repeated query parameters, the
    answer's status being one the contract lists, and the body naming the path's campaign."""
    problems = []
    names = [k for k, _ in parse_qsl(entry["query_string"], keep_blank_values=True)]
    unknown = sorted(set(names) - declared(spec, method, template, "query"))
    if unknown:
        problems.append(f"undeclared query parameter(s) {unknown}")
    repeated = sorted(n for n, count in Counter(names).items() if count > 1)
    if repeated:
        problems.append(f"repeated query parameter(s) {repeated}")
    if not status_documented(entry["status"], documented_statuses(spec, method, template)):
        problems.append(f"answered {entry['status']}, a status the contract does not list")
    if entry["status"] == 400:
        problems.append("the simulator refused the request as malformed (400)")
    if template == ARCHIVE and isinstance(entry["body"], dict):
        path_campaign = unquote(entry["path"].split("/")[4])
        if entry["body"].get("campaignId") != path_campaign:
            problems.append(
                f"body campaignId {entry['body'].get('campaignId')!r} is not "
                f"the path's campaign {path_campaign!r}"
            )
    return problems


# -- the check can fail ----------------------------------------------------------

_ARCHIVE_PATH = "/api/v2/campaigns/c-1/contacts/archive"
_GOOD_BODY: dict[str, Any] = {
    "campaignId": "c-1",
    "items": [
        {
            "contactId": "contact-1",
            "attemptId": "att-1",
            "statusMatrix": {
                "outcomeCode": "NO_ANSWER",
                "disposition": "NO_CONTACT",
                "callDurationSeconds": 0,
                "anonymized": True,
            },
            "retentionPeriodDays": 365,
            "deleteActive": True,
        }
    ],
    "forceColdStorage": True,
}
# What the tutorial's ``batch.dict()`` puts on the wire.
_TUTORIAL_BODY: dict[str, Any] = {
    "campaign_id": "c-1",
    "items": [
        {
            "contact_id": "contact-1",
            "attempt_id": "att-1",
            "status_matrix": {
                "outcome_code": "NO_ANSWER",
                "disposition": "NO_CONTACT",
                "call_duration_seconds": 0,
                "anonymized": True,
            },
            "retention_period_days": 365,
            "delete_active": True,
        }
    ],
    "force_cold_storage": True,
}
_AUTH = {"Authorization": "Bearer t0k3n"}
_ARCHIVE_HEADERS = {**_AUTH, "Idempotency-Key": "arc-0001"}


def _archive(body: Any, headers: dict[str, str] | None = None) -> BuiltRequest:
    return BuiltRequest("POST", _ARCHIVE_PATH, headers=headers or _ARCHIVE_HEADERS, json_body=body)


def test_the_camel_case_archive_body_passes(spec) -> None:
    assert request_errors(spec, _archive(_GOOD_BODY)) == []


def test_the_tutorials_snake_case_archive_body_fails(spec) -> None:
    errors = request_errors(spec, _archive(_TUTORIAL_BODY))
    assert errors
    text = "\n".join(errors)
    assert "campaign_id" in text and "campaignId" in text


def _mutated(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    body = copy.deepcopy(_GOOD_BODY)
    change(body)
    return body


def _item(body: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = body["items"][0]
    return item


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_mutated(lambda b: b.update(items=b["items"] * 201)), id="201-items"),
        pytest.param(_mutated(lambda b: b.update(items=[])), id="no-items"),
        pytest.param(_mutated(lambda b: _item(b).update(retentionPeriodDays=0)), id="retention-0"),
        pytest.param(
            _mutated(lambda b: _item(b).update(retentionPeriodDays=3651)), id="retention-3651"
        ),
        pytest.param(
            _mutated(lambda b: _item(b).update(retentionPeriodDays="365")), id="retention-string"
        ),
        pytest.param(
            _mutated(lambda b: _item(b)["statusMatrix"].update(anonymized=False)),
            id="not-anonymized",
        ),
        pytest.param(
            _mutated(lambda b: _item(b)["statusMatrix"].pop("disposition")), id="missing-key"
        ),
        pytest.param(_mutated(lambda b: _item(b).update(note="x")), id="extra-key"),
        pytest.param(_mutated(lambda b: b.pop("forceColdStorage")), id="missing-top-key"),
    ],
)
def test_archive_bodies_outside_the_contract_fail(spec, body: dict[str, Any]) -> None:
    assert request_errors(spec, _archive(body))


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(_archive(_GOOD_BODY, headers=_AUTH), id="archive-without-idempotency-key"),
        pytest.param(
            _archive(_GOOD_BODY, headers={"Idempotency-Key": "arc-0001"}),
            id="archive-without-token",
        ),
        pytest.param(
            BuiltRequest(
                "GET",
                "/api/v2/campaigns/c-1/attempts",
                headers=_AUTH,
                query={"status": "completed", "limit": "1001", "offset": "0"},
            ),
            id="page-too-large",
        ),
        pytest.param(
            BuiltRequest(
                "GET",
                "/api/v2/campaigns/c-1/attempts",
                headers=_AUTH,
                query={"status": "all", "limit": "10", "offset": "0"},
            ),
            id="status-not-completed",
        ),
        pytest.param(
            BuiltRequest(
                "GET",
                "/api/v2/campaigns/c-1/attempts",
                headers=_AUTH,
                query={"status": "completed", "limit": "10"},
            ),
            id="offset-missing",
        ),
        pytest.param(
            BuiltRequest(
                "PATCH", "/api/v2/campaigns/c-1", headers=_AUTH, json_body={"status": "STOPPED"}
            ),
            id="patch-unknown-status",
        ),
    ],
)
def test_other_requests_outside_the_contract_fail(spec, request_: BuiltRequest) -> None:
    assert request_errors(spec, request_)


def test_snake_case_form_fails_for_the_token_request(spec) -> None:
    logged = {
        "method": "POST",
        "path": TOKEN,
        "query_string": "",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        "body": {"grantType": "client_credentials", "clientId": "a", "clientSecret": "b"},
    }
    assert request_errors(spec, LoggedRequest("http://127.0.0.1:8080", logged))
    logged["body"] = {"grant_type": "client_credentials", "client_id": "a", "client_secret": "b"}
    assert request_errors(spec, LoggedRequest("http://127.0.0.1:8080", logged)) == []


# -- the simulator's real answers ------------------------------------------------


def _check(
    spec: OpenAPI, response: requests.Response, status: int, *, valid_request: bool = True
) -> None:
    """The answer has ``status`` and matches the contract; so does the request, unless
    it was sent to provoke a refusal."""
    assert response.status_code == status, response.text
    request = RequestsOpenAPIRequest(response.request)
    assert (request_errors(spec, request) == []) == valid_request
    errors = response_errors(spec, request, LiveResponse(response))
    assert not errors, "\n".join(errors)


def test_simulator_answers_match_the_contract(start_sim, spec) -> None:
    sim = start_sim(
        Faults(active_campaigns=[ACTIVE]),
        campaign_ids=CAMPAIGNS,
        attempts_per_campaign=300,
        malformed_rate=0.0,
        seed=5,
    )
    base = sim.base_url
    http = requests.Session()
    http.trust_env = False
    form = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }

    token = http.post(f"{base}{TOKEN}", data=form, timeout=5)
    _check(spec, token, 200)
    _check(
        spec, http.post(f"{base}{TOKEN}", data={**form, "client_secret": "wrong"}, timeout=5), 401
    )

    listing_url = f"{base}/api/v2/campaigns/{CAMPAIGNS[0]}/attempts"
    params: dict[str, str | int] = {"status": "completed", "limit": 300, "offset": 0}
    _check(spec, http.get(listing_url, params=params, timeout=5), 401, valid_request=False)
    http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    listing = http.get(listing_url, params=params, timeout=5)
    _check(spec, listing, 200)
    records = listing.json()
    assert any(r.get("retentionDays", 0) is None for r in records), "no null retentionDays listed"
    _check(
        spec,
        http.get(f"{base}/api/v2/campaigns/no-such-campaign/attempts", params=params, timeout=5),
        404,
    )

    body = _archive_body(CAMPAIGNS[0], records)
    archive_url = f"{base}/api/v2/campaigns/{CAMPAIGNS[0]}/contacts/archive"
    key = {"Idempotency-Key": "arc-contract-1"}
    _check(spec, http.post(archive_url, json=body, headers=key, timeout=5), 200)
    replay = http.post(archive_url, json=body, headers=key, timeout=5)
    _check(spec, replay, 200)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    _check(
        spec,
        http.post(archive_url, json=_TUTORIAL_BODY, headers={"Idempotency-Key": "k2"}, timeout=5),
        400,
        valid_request=False,
    )

    active_url = f"{base}/api/v2/campaigns/{ACTIVE}"
    active_records = http.get(f"{active_url}/attempts", params=params, timeout=5).json()
    active_body = _archive_body(ACTIVE, active_records)
    _check(
        spec,
        http.post(
            f"{active_url}/contacts/archive",
            json=active_body,
            headers={"Idempotency-Key": "k3"},
            timeout=5,
        ),
        409,
    )
    _check(spec, http.patch(active_url, json={"status": "PAUSED"}, timeout=5), 200)
    _check(spec, http.patch(active_url, json={"status": "ACTIVE"}, timeout=5), 200)

    sim.set_faults(Faults(rate_limit_rps=0.01))
    answers = [http.get(listing_url, params=params, timeout=5) for _ in range(3)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert limited[0].headers.get("Retry-After")
    _check(spec, limited[0], 429)


def _archive_body(campaign_id: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """A valid archive body for the first few archivable listed records."""
    eligible = [r for r in records if r["anonymized"] and r["outcomeCode"] in APPROVED][:5]
    assert eligible
    return {
        "campaignId": campaign_id,
        "items": [
            {
                "contactId": r["contactId"],
                "attemptId": r["id"],
                "statusMatrix": {
                    "outcomeCode": r["outcomeCode"],
                    "disposition": r["disposition"],
                    "callDurationSeconds": r["duration"],
                    "anonymized": True,
                },
                "retentionPeriodDays": 365,
                "deleteActive": True,
            }
            for r in eligible
        ],
        "forceColdStorage": True,
    }


def test_malformed_listed_records_fail_response_validation(start_sim, spec) -> None:
    # The simulator's malformed records are deliberate breaches of the contract;
    # the response check must see them.
    sim = start_sim(campaign_ids=CAMPAIGNS[:1], attempts_per_campaign=20, malformed_rate=1.0)
    http = requests.Session()
    http.trust_env = False
    form = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    token = http.post(f"{sim.base_url}{TOKEN}", data=form, timeout=5).json()["access_token"]
    params: dict[str, str | int] = {"status": "completed", "limit": 20, "offset": 0}
    listing = http.get(
        f"{sim.base_url}/api/v2/campaigns/{CAMPAIGNS[0]}/attempts",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert listing.status_code == 200
    request = RequestsOpenAPIRequest(listing.request)
    assert response_errors(spec, request, LiveResponse(listing))

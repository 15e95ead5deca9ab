from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from archiver.simulator import Faults, SimConfig, Simulator

from ._api import NAMED, SMALL, Api, body, is_eligible, item, logged_in

Body = dict[str, Any]


def _snake_case(b: Body) -> Body:
    # What the tutorial's `batch.dict()` sends.
    return {
        "campaign_id": b["campaignId"],
        "items": [
            {
                "contact_id": i["contactId"], "attempt_id": i["attemptId"],
                "status_matrix": {
                    "outcome_code": i["statusMatrix"]["outcomeCode"],
                    "disposition": i["statusMatrix"]["disposition"],
                    "call_duration_seconds": i["statusMatrix"]["callDurationSeconds"],
                    "anonymized": True,
                },
                "retention_period_days": 365, "delete_active": True,
            }
            for i in b["items"]
        ],
        "force_cold_storage": True,
    }


def _set(path: str, value: Any) -> Callable[[Body], Body]:
    def mutate(b: Body) -> Body:
        target: Any = b
        *parents, last = path.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value
        return b
    return mutate


def _delete(path: str) -> Callable[[Body], Body]:
    def mutate(b: Body) -> Body:
        target: Any = b
        *parents, last = path.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        del target[last]
        return b
    return mutate


def _duplicate_first(b: Body) -> Body:
    b["items"].append(copy.deepcopy(b["items"][0]))
    return b


BAD_BODIES: dict[str, Callable[[Body], Any]] = {
    "snake_case keys": _snake_case,
    "one snake_case key in an item": lambda b: {
        **b, "items": [{**{k: v for k, v in b["items"][0].items() if k != "contactId"},
                        "contact_id": b["items"][0]["contactId"]}]},
    "unknown top-level key": _set("dryRun", True),
    "unknown item key": _set("items.0.note", "x"),
    "unknown statusMatrix key": _set("items.0.statusMatrix.reason", "x"),
    "missing forceColdStorage": _delete("forceColdStorage"),
    "missing deleteActive": _delete("items.0.deleteActive"),
    "missing statusMatrix.disposition": _delete("items.0.statusMatrix.disposition"),
    "string retention": _set("items.0.retentionPeriodDays", "365"),
    "float retention": _set("items.0.retentionPeriodDays", 365.0),
    "bool for integer": _set("items.0.statusMatrix.callDurationSeconds", True),
    "integer for bool": _set("forceColdStorage", 1),
    "null contactId": _set("items.0.contactId", None),
    "items not a list": _set("items", {}),
    "zero items": _set("items", []),
    "retention 0": _set("items.0.retentionPeriodDays", 0),
    "retention 3651": _set("items.0.retentionPeriodDays", 3651),
    "negative duration": _set("items.0.statusMatrix.callDurationSeconds", -1),
    "campaignId mismatch": _set("campaignId", "another-campaign"),
    "anonymized false": _set("items.0.statusMatrix.anonymized", False),
    "unknown attempt": _set("items.0.attemptId", "att-00000000-0000001"),
    "contactId mismatch": _set("items.0.contactId", "00000000-0000-0000-0000-000000000000"),
    "duplicate attempt": _duplicate_first,
    "body is a list": lambda b: [b],
}


@pytest.mark.parametrize("mutate", list(BAD_BODIES.values()), ids=list(BAD_BODIES))
def test_off_contract_bodies_are_400_and_archive_nothing(
    api: Api, mutate: Callable[[Body], Any]
) -> None:
    cid = api.sim.campaign_ids[0]
    good = body(cid, api.eligible_records(cid)[:3])
    resp = api.archive(cid, mutate(copy.deepcopy(good)))
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]
    assert resp.json()["detail"]
    assert api.sim.ledger() == {}
    assert len(api.list_all(cid)) == SMALL.attempts_per_campaign


def test_201_items_is_400_and_200_is_fine() -> None:
    with Simulator(SimConfig(seed=5, campaigns=1, attempts_per_campaign=700,
                             unanonymized_rate=0, malformed_rate=0)) as sim:
        api = logged_in(sim)
        cid = sim.campaign_ids[0]
        records = api.list_all(cid)
        too_many = api.archive(cid, body(cid, records[:201]))
        assert too_many.status_code == 400
        assert "200" in too_many.json()["detail"]
        assert api.archive(cid, body(cid, records[:200])).status_code == 200


def test_attempts_that_are_not_archivable_as_listed_are_400(api: Api) -> None:
    cid = api.sim.campaign_ids[0]
    records = api.list_all(cid)
    unanonymized = next(r for r in records
                        if r.get("anonymized") is False and is_eligible({**r, "anonymized": True}))
    forged = item(unanonymized)  # claims anonymized: true
    resp = api.archive(cid, {"campaignId": cid, "items": [forged], "forceColdStorage": False})
    assert resp.status_code == 400
    assert resp.json()["error"] == "not_anonymized"
    malformed = next(r for r in records if r.get("outcomeCode") is None)
    fixed = {**malformed, "outcomeCode": "BUSY"}
    resp = api.archive(cid, {"campaignId": cid, "items": [item(fixed)], "forceColdStorage": False})
    assert resp.status_code == 400
    assert resp.json()["error"] == "malformed_attempt"
    other_campaign = api.eligible_records(api.sim.campaign_ids[1])[0]
    resp = api.archive(cid, body(cid, [other_campaign]))
    assert resp.status_code == 400
    assert resp.json()["error"] == "unknown_attempt"
    assert api.sim.ledger() == {}


def test_json_body_needs_json_content_type(api: Api) -> None:
    cid = api.sim.campaign_ids[0]
    payload = json.dumps(body(cid, api.eligible_records(cid)[:1]))
    resp = api.http.post(f"{api.base}/api/v2/campaigns/{cid}/contacts/archive", data=payload,
                         headers={"Content-Type": "text/plain"}, timeout=5)
    assert resp.status_code == 400
    resp = api.http.post(f"{api.base}/api/v2/campaigns/{cid}/contacts/archive", data="{",
                         headers={"Content-Type": "application/json"}, timeout=5)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_json"


def test_archiving_removes_attempts_from_the_listing(api: Api) -> None:
    cid = api.sim.campaign_ids[0]
    before = api.list_all(cid)
    chosen = [r for r in before if is_eligible(r)][:50]
    resp = api.archive(cid, body(cid, chosen))
    assert resp.status_code == 200
    answer = resp.json()
    assert set(answer) == {"archivedCount", "failedCount", "migrationJobId", "status", "timestamp"}
    assert answer["archivedCount"] == 50
    assert answer["failedCount"] == 0
    assert answer["status"] == "COMPLETED"
    assert answer["migrationJobId"]
    after = api.list_all(cid)
    gone = {r["id"] for r in chosen}
    assert [r["id"] for r in after] == [r["id"] for r in before if r["id"] not in gone]
    # Offsets shift: the first page now starts with the first attempt not archived.
    assert api.listing(cid, limit=1).json()[0]["id"] == after[0]["id"]
    assert api.sim.ledger() == {attempt_id: 1 for attempt_id in gone}
    view = api.sim.campaigns()[cid]
    assert view["remaining"] == len(after)
    assert view["archived"] == 50


def test_ledger_over_http_counts_each_archive(api: Api) -> None:
    cid = api.sim.campaign_ids[1]
    record = api.eligible_records(cid)[0]
    assert api.archive(cid, body(cid, [record])).status_code == 200
    ledger = api.http.get(f"{api.base}/_sim/ledger", timeout=5).json()
    assert ledger == {"attempts": {record["id"]: 1}}


def test_same_idempotency_key_replays_without_effect(api: Api) -> None:
    cid = api.sim.campaign_ids[0]
    payload = body(cid, api.eligible_records(cid)[:5])
    first = api.archive(cid, payload, key="batch-1")
    replay = api.archive(cid, payload, key="batch-1")
    assert first.status_code == replay.status_code == 200
    assert replay.json() == first.json()
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert set(api.sim.ledger().values()) == {1}
    assert api.sim.stats()["replays"] == 1


def test_same_idempotency_key_with_another_body_is_422(api: Api) -> None:
    cid = api.sim.campaign_ids[0]
    records = api.eligible_records(cid)
    assert api.archive(cid, body(cid, records[:2]), key="k").status_code == 200
    resp = api.archive(cid, body(cid, records[2:4]), key="k")
    assert resp.status_code == 422
    assert len(api.sim.ledger()) == 2
    assert api.sim.stats()["idempotency_conflicts"] == 1


def test_archiving_again_under_a_new_key_counts_twice(api: Api) -> None:
    cid = api.sim.campaign_ids[0]
    payload = body(cid, api.eligible_records(cid)[:3])
    assert api.archive(cid, payload, key="first").status_code == 200
    again = api.archive(cid, payload, key="second")
    assert again.status_code == 200
    assert again.json()["archivedCount"] == 3
    assert set(api.sim.ledger().values()) == {2}
    assert api.sim.stats()["double_archived"] == 3


def test_active_campaign_is_409_until_paused() -> None:
    with Simulator(NAMED, Faults(active_campaigns=["camp-a"])) as sim:
        api = logged_in(sim)
        cid = "camp-a"
        payload = body(cid, api.eligible_records(cid)[:4])
        conflict = api.archive(cid, payload)
        assert conflict.status_code == 409
        assert sim.ledger() == {}
        other = sim.campaign_ids[1]
        assert api.archive(other, body(other, api.eligible_records(other)[:1])).status_code == 200
        paused = api.patch(cid, {"status": "PAUSED"})
        assert paused.status_code == 200
        assert paused.json() == {"id": cid, "status": "PAUSED"}
        assert api.archive(cid, payload).status_code == 200
        assert api.patch(cid, {"status": "ACTIVE"}).json()["status"] == "ACTIVE"
        assert api.archive(cid, payload).status_code == 409
        history = [h["status"] for h in sim.stats()["campaigns"][cid]["history"]]
        assert history == ["ACTIVE", "PAUSED", "ACTIVE"]


@pytest.mark.parametrize(
    "patch",
    [{"status": "STOPPED"}, {"status": "paused"}, {}, {"status": "PAUSED", "force": True},
     {"state": "PAUSED"}, ["PAUSED"]],
)
def test_bad_status_patch_is_400(api: Api, patch: Any) -> None:
    cid = api.sim.campaign_ids[0]
    assert api.patch(cid, patch).status_code == 400
    assert api.sim.campaigns()[cid]["status"] == "IDLE"


def test_partial_failures_stay_listed() -> None:
    with Simulator(SMALL, Faults(partial_failure_rate=1.0)) as sim:
        api = logged_in(sim)
        cid = sim.campaign_ids[0]
        payload = body(cid, api.eligible_records(cid)[:7])
        answer = api.archive(cid, payload).json()
        assert answer["archivedCount"] == 0
        assert answer["failedCount"] == 7
        assert answer["status"] == "PARTIAL"
        assert sim.ledger() == {}
        assert len(api.list_all(cid)) == SMALL.attempts_per_campaign
        sim.set_faults(Faults(partial_failure_rate=0.5))
        answer = api.archive(cid, payload).json()
        assert answer["archivedCount"] + answer["failedCount"] == 7
        assert len(sim.ledger()) == answer["archivedCount"]


@pytest.mark.parametrize("status", [400, 403])
def test_fail_status_answers_every_call_about_a_campaign(status: int) -> None:
    target, other = NAMED.campaign_ids
    with Simulator(NAMED, Faults(fail_status={target: status})) as sim:
        api = logged_in(sim)
        assert api.listing(target).status_code == status
        assert api.patch(target, {"status": "PAUSED"}).status_code == status
        assert api.archive(target, {"campaignId": target}).status_code == status
        assert api.listing(other).status_code == 200


def test_misstated_status_matrix_is_accepted_but_counted(api: Api) -> None:
    cid = api.sim.campaign_ids[0]
    first, second = api.eligible_records(cid)[:2]
    payload = body(cid, [first, second])
    assert api.archive(cid, payload).status_code == 200
    assert api.sim.stats()["status_matrix_mismatches"] == 0
    third = api.eligible_records(cid)[0]
    wrong = item(third)
    wrong["statusMatrix"]["callDurationSeconds"] = third["duration"] + 1
    resp = api.archive(cid, {"campaignId": cid, "items": [wrong], "forceColdStorage": True})
    assert resp.status_code == 200
    assert api.sim.stats()["status_matrix_mismatches"] == 1

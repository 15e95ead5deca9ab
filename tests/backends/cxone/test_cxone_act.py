"""act() through real sockets: export changes nothing on the tenant; retire removes each
prospect once and maps per-record failures (a 200 can carry them) to failed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import ValidationError

from archiver.backends.cxone import wire
from archiver.engine.backend import AttemptRecord
from archiver.errors import ConfigError, TerminalApiError, UnreadableAnswer
from archiver.simulator.cxone import Behaviour
from tests.backends.cxone.conftest import api_requests


def _listed(backend, cid: str) -> list[AttemptRecord]:
    records = [r for page in backend.pages(cid, since=None) for r in page.records]
    assert all(isinstance(r, AttemptRecord) for r in records)
    return [r for r in records if isinstance(r, AttemptRecord)]


def _batches(records: list[AttemptRecord], size: int) -> list[list[AttemptRecord]]:
    return [records[i: i + size] for i in range(0, len(records), size)]


def test_export_archives_every_item_and_sends_nothing(start_sim, backend_for) -> None:
    sim = start_sim()
    cid = sim.campaign_ids[0]
    backend = backend_for(sim, page_size=100)
    listed = _listed(backend, cid)
    before = len(sim.requests())
    results = [backend.act(cid, batch, idempotency_key=f"k{n}")
               for n, batch in enumerate(_batches(listed, 40))]

    assert len(sim.requests()) == before, "export sent a request to the tenant"
    assert all(r.status == "exported" for r in results)
    outcomes = {rid: o for r in results for rid, o in r.outcomes.items()}
    assert set(outcomes) == {r.id for r in listed}
    assert {o for o, _ in outcomes.values()} == {"archived"}
    assert sim.ledger() == {"requested": {}, "removed": {}}
    assert all(s["stops"] == s["starts"] == 0 for s in sim.skills().values())


def test_retire_removes_each_prospect_once_and_maps_failures(start_sim, backend_for) -> None:
    sim = start_sim(prospects_per_list=60)
    cid, list_id = sim.campaign_ids[0], sim.call_list_ids[0]
    finalized = sim.finalized_attempts(list_id)  # attempt id -> prospect
    kept = sorted(set(finalized.values()))[:3]
    sim.set(remove_failures={ext: "ProspectLocked" for ext in kept})
    backend = backend_for(sim, source_type="call_list_attempts", call_list=list_id,
                          actions={cid: "retire"}, page_size=25)
    listed = _listed(backend, cid)
    assert {r.id for r in listed} == set(finalized)
    assert all(r.contact_id == finalized[r.id] for r in listed)

    # Batches of 7 split the attempts of many prospects across batches.
    results = [backend.act(cid, batch, idempotency_key=f"k{n}")
               for n, batch in enumerate(_batches(listed, 7))]

    outcomes = {rid: o for r in results for rid, o in r.outcomes.items()}
    assert set(outcomes) == set(finalized)
    for attempt, (state, reason) in outcomes.items():
        if finalized[attempt] in kept:
            assert state == "failed" and "ProspectLocked" in reason, reason
        else:
            assert state == "archived", reason
    ledger = sim.ledger()
    assert ledger["requested"] == dict.fromkeys(set(finalized.values()), 1), "a prospect was named twice"
    assert ledger["removed"] == dict.fromkeys(set(finalized.values()) - set(kept), 1)
    assert set(sim.finalized_attempts(list_id).values()) == set(kept)
    assert any(r.status == "partially_retired" for r in results)
    bodies = [e["body"] for e in api_requests(sim, "remove")]
    assert all(set(b) == {"prospectsToRemove"} for b in bodies)
    assert all(set(p) == {"externalId"} for b in bodies for p in b["prospectsToRemove"])


def test_concurrent_batches_sharing_a_prospect_remove_it_once(start_sim, backend_for) -> None:
    # Slow answers: the batches are certainly in flight together.
    sim = start_sim(Behaviour(latency_seconds=0.2), prospects_per_list=40)
    cid, list_id = sim.campaign_ids[0], sim.call_list_ids[0]
    backend = backend_for(sim, source_type="call_list_attempts", call_list=list_id,
                          actions={cid: "retire"}, page_size=50)
    listed = _listed(backend, cid)
    # Every batch holds one attempt of each prospect with several: all of them race.
    by_prospect: dict[str, list[AttemptRecord]] = {}
    for record in listed:
        by_prospect.setdefault(record.contact_id, []).append(record)
    batches = [[group[i] for group in by_prospect.values() if len(group) > i] for i in range(3)]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(
            lambda b: backend.act(cid, b, idempotency_key="k"), [b for b in batches if b]
        ))
    outcomes = [o for r in results for o, _ in r.outcomes.values()]
    assert outcomes and set(outcomes) == {"archived"}
    assert len([b for b in batches if b]) == 3
    assert set(sim.ledger()["requested"].values()) == {1}


def test_a_second_retire_of_a_removed_prospect_is_reported_failed(start_sim, backend_for) -> None:
    # A new backend (a later run) knows nothing of the removal: the API's own
    # answer (a failed record) is what it reports.
    sim = start_sim(prospects_per_list=10)
    cid, list_id = sim.campaign_ids[0], sim.call_list_ids[0]
    settings = {"source_type": "call_list_attempts", "call_list": list_id,
                "actions": {cid: "retire"}}
    first = backend_for(sim, **settings)
    listed = _listed(first, cid)
    first.act(cid, listed[:1], idempotency_key="k")
    result = backend_for(sim, **settings).act(cid, listed[:1], idempotency_key="k")
    [(state, reason)] = result.outcomes.values()
    assert state == "failed" and sim.behaviour.invented_not_found_code in reason
    assert result.status == "failed"


def test_only_the_removals_own_unreadable_answer_leaves_its_outcome_unknown(
    start_sim, backend_for
) -> None:
    """An unreadable 2xx removal answer: the prospects may have left (unknown, listed
    again). A login on the way answered unreadably: the removal was never sent, a plain
    refusal, never read as the removal's own answer."""
    sim = start_sim(prospects_per_list=10)
    cid, list_id = sim.campaign_ids[0], sim.call_list_ids[0]
    backend = backend_for(sim, source_type="call_list_attempts", call_list=list_id,
                          actions={cid: "retire"})
    listed = _listed(backend, cid)
    sim.revoke_tokens()
    sim.set(served_bodies={"token": (200, b"<html>maintenance</html>")})
    with pytest.raises(TerminalApiError, match="not valid JSON") as refused:
        backend.act(cid, listed[:2], idempotency_key="k1")
    assert not isinstance(refused.value, UnreadableAnswer)
    assert refused.value.endpoint.endswith("token")
    assert sim.ledger()["requested"] == {}, "the removal was never sent"

    sim.set(served_bodies={"remove": (200, b'{"successfulRecords": [')})
    result = backend.act(cid, listed[:2], idempotency_key="k2")
    assert {state for state, _ in result.outcomes.values()} == {"unknown"}
    assert all("answer unreadable" in reason for _, reason in result.outcomes.values())
    assert set(sim.ledger()["removed"]) == {r.contact_id for r in listed[:2]}


def test_retire_needs_calling_list_attempts(start_sim, backend_for) -> None:
    sim = start_sim()
    with pytest.raises(ConfigError, match=r"needs source\.type call_list_attempts"):
        backend_for(sim, actions={sim.campaign_ids[0]: "retire"})


def test_attempt_records_name_their_prospect_and_list(start_sim, backend_for) -> None:
    sim = start_sim(Behaviour(), prospects_per_list=20)
    cid, list_id = sim.campaign_ids[0], sim.call_list_ids[0]
    backend = backend_for(sim, source_type="call_list_attempts", call_list=list_id)
    listed = _listed(backend, cid)
    assert listed and all(r.handle == {"externalId": r.contact_id, "listId": list_id}
                          for r in listed)
    assert all(r.outcome and r.disposition for r in listed)
    assert backend.fields == {"outcome", "disposition", "contact_id"}
    calls = api_requests(sim, "attempts")
    assert all(e["query"]["finalized"] == "true" for e in calls)


def test_a_removal_answer_naming_prospects_by_number_is_read() -> None:
    # The generated client types externalId as a number: an answer may carry one, and
    # it names the prospect sent as text.
    answer = wire.RemoveProspects.model_validate({
        "successfulRecords": [{"externalId": 1047, "resultCode": "Removed"}],
        "failedRecords": [{"externalId": "1048", "resultCode": "ProspectLocked"}],
    })
    assert [r.external_id for r in answer.successful_records] == ["1047"]
    assert [r.external_id for r in answer.failed_records] == ["1048"]
    with pytest.raises(ValidationError):
        wire.RemoveProspects.model_validate({"successfulRecords": [{"externalId": True}]})

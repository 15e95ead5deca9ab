"""completed_contacts through real sockets: contacts updated while the backend pages
are listed once, none missed, checked against the simulator's own contacts."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
import requests

from archiver.backends.cxone import records
from archiver.engine.backend import AttemptRecord, MalformedRecord
from archiver.simulator.cxone import Behaviour
from tests.backends.cxone.conftest import api_requests, listed_ids
from tests.backends.cxone.test_cxone_http import _token


def test_a_quiet_listing_is_every_contact_once_and_ends_on_a_short_page(
    start_sim, backend_for
) -> None:
    sim = start_sim()
    backend = backend_for(sim, page_size=50)
    cid = sim.campaign_ids[0]
    ids = listed_ids(backend, cid)
    assert sorted(ids) == sorted(sim.contacts(cid))
    calls = api_requests(sim, "completed")
    assert all(e["query"]["campaignId"] == cid for e in calls)
    assert all(e["query"]["orderBy"] == "lastUpdateTime asc" for e in calls)
    assert all(e["query"]["updatedSince"].endswith("Z") for e in calls)
    # 300 contacts, 49 new ones a page after the first: the seventh page is short.
    assert len(calls) == 7 and all(e["status"] == 200 for e in calls)


def test_nothing_to_list_is_a_204_and_no_page(start_sim, backend_for) -> None:
    sim = start_sim()
    backend = backend_for(sim)
    assert list(backend.pages(sim.campaign_ids[0], since="2099-01-01T00:00:00Z")) == []
    assert [e["status"] for e in api_requests(sim, "completed")] == [204]


def test_a_since_before_the_year_1000_is_sent_with_a_four_digit_year(start_sim, backend_for) -> None:
    # A valid source.since (V022 accepts it); its year was once written `999`, which the
    # paging could not read back: a ValueError traceback before the first request.
    sim = start_sim()
    cid = sim.campaign_ids[0]
    ids = listed_ids(backend_for(sim), cid, since="0999-01-01T00:00:00Z")
    assert sorted(ids) == sorted(sim.contacts(cid))
    first = api_requests(sim, "completed")[0]
    assert first["query"]["updatedSince"] == "0999-01-01T00:00:00.000Z"


@pytest.mark.parametrize("inclusive", [True, False], ids=["inclusive", "exclusive"])
def test_contacts_updated_while_paging_are_listed_once_and_none_is_missed(
    start_sim, backend_for, inclusive
) -> None:
    sim = start_sim(Behaviour(churn_per_request=4,
                              invented_updated_since_inclusive=inclusive))
    backend = backend_for(sim, page_size=20)
    cid = sim.campaign_ids[0]
    pages = list(backend.pages(cid, since=None))
    ids = [r.id for p in pages for r in p.records]

    assert len(ids) == len(set(ids)), "a contact was listed twice"
    assert sim.stats()["churned"] > 50
    assert backend.listings[cid].restarts > 0, "the churn never moved a record under the walk"
    # Whatever the run left was updated after it began, at or after its final
    # watermark: the next run lists it.
    watermark = pages[-1].watermark
    assert watermark is not None
    now = sim.contacts(cid)
    left = set(now) - set(ids)
    assert all(now[c] >= watermark for c in left)
    sim.set(churn_per_request=0)
    again = listed_ids(backend, cid, since=watermark)
    assert left <= set(again)
    assert set(ids) | set(again) == set(now)


def test_plain_offset_paging_breaks_under_the_same_churn(start_sim) -> None:
    # The hostile churn the test above survives, against skip/top alone.
    sim = start_sim(Behaviour(churn_per_request=4))
    cid = sim.campaign_ids[0]
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {_token(sim)}", "Accept": "application/json"})
    got: list[str] = []
    skip = 0
    while True:
        query = urlencode({"campaignId": cid, "updatedSince": "2000-01-01T00:00:00Z",
                           "orderBy": "lastUpdateTime asc", "skip": skip, "top": 20})
        answer = session.get(f"{sim.base_url}/inContactAPI/services/v34.0/contacts/completed?{query}")
        if answer.status_code == 204:
            break
        page = answer.json()["completedContacts"]
        got += [str(c["contactId"]) for c in page]
        skip += len(page)
    assert len(got) != len(set(got)) or set(got) != set(sim.contacts(cid))


def test_the_watermark_lets_a_later_run_list_only_what_changed(start_sim, backend_for) -> None:
    sim = start_sim()
    backend = backend_for(sim, page_size=40)
    cid = sim.campaign_ids[0]
    pages = list(backend.pages(cid, since=None))
    watermark = pages[-1].watermark
    assert watermark is not None
    # Some contacts change after the run (while another client lists them); the next
    # run starts from the watermark.
    sim.set(churn_per_request=2, churn_served_share=0.0)
    list(backend_for(sim, page_size=40).pages(cid, since=None))
    sim.set(churn_per_request=0)
    after = sim.contacts(cid)
    changed = {c for c, t in after.items() if t >= watermark}
    again = listed_ids(backend, cid, since=watermark)
    assert set(again) == changed
    assert 0 < len(again) < len(after) / 4


def test_a_token_expiring_mid_listing_gets_a_fresh_login(start_sim, backend_for) -> None:
    # The token dies while the answer says it has an hour left: only a 401 tells.
    sim = start_sim(Behaviour(token_lifetime_seconds=0.4, reported_expires_in=3600.0))
    backend = backend_for(sim, page_size=50)
    cid = sim.campaign_ids[0]
    ids: list[str] = []
    for n, page in enumerate(backend.pages(cid, since=None)):
        ids += [r.id for r in page.records]
        if n == 2:
            time.sleep(0.6)
    assert sorted(ids) == sorted(sim.contacts(cid))
    assert sim.stats()["grants"]["password"] >= 2
    assert any(e["status"] == 401 for e in api_requests(sim, "completed"))


def test_a_token_revoked_mid_listing_loses_nothing(start_sim, backend_for) -> None:
    sim = start_sim(Behaviour(churn_per_request=2))
    backend = backend_for(sim, page_size=30)
    cid = sim.campaign_ids[0]
    ids: list[str] = []
    for n, page in enumerate(backend.pages(cid, since=None)):
        ids += [r.id for r in page.records]
        if n == 3:
            sim.revoke_tokens()
    assert len(ids) == len(set(ids))
    assert sim.stats()["grants"] == {"password": 2}


def test_records_carry_the_disposition_name_and_say_what_is_not_provided(
    start_sim, backend_for
) -> None:
    sim = start_sim()
    backend = backend_for(sim, page_size=100)
    cid = sim.campaign_ids[0]
    listed = [r for p in backend.pages(cid, since=None) for r in p.records]
    assert all(isinstance(r, AttemptRecord) for r in listed)
    attempts = [r for r in listed if isinstance(r, AttemptRecord)]
    outcomes = {r.outcome for r in attempts}
    assert outcomes <= {*sim.config.dispositions, records.NO_DISPOSITION}
    assert records.NO_DISPOSITION in outcomes and len(outcomes) > 3
    assert all(r.anonymized is None and r.retention_days is None for r in attempts)
    assert all(r.id == r.contact_id and r.updated_at and r.duration is not None for r in attempts)
    assert backend.fields == {"outcome", "duration", "updated_at", "contact_id"}
    assert "anonymized" not in backend.fields and "retention_days" not in backend.fields
    # Dispositions are read once per backend, not once per listing.
    list(backend.pages(sim.campaign_ids[1], since=None))
    assert len(api_requests(sim, "dispositions")) == 1


def test_a_record_of_another_campaign_is_malformed_not_taken(start_sim, backend_for) -> None:
    record = records.contact(
        {"contactId": 5, "lastUpdateTime": "2026-09-01T00:00:00.000Z", "campaignId": 99},
        "1834501",
        lambda _id: None,
    )
    assert isinstance(record, MalformedRecord) and record.field == "campaignId"
    assert record.attempt_id == "5"


def _contact(contact_id: object, cid: str) -> dict[str, object]:
    return {"contactId": contact_id, "lastUpdateTime": "2026-09-01T00:00:05.000Z",
            "campaignId": int(cid), "primaryDispositionId": None, "totalDurationSeconds": 30}


def test_a_contact_twice_in_one_answer_is_listed_once(start_sim, backend_for) -> None:
    """Both copies were once yielded: the engine counted the contact listed twice while
    the state store kept one row for it ("listed 3, archived 2, failed 0")."""
    sim = start_sim()
    cid = sim.campaign_ids[0]
    first, second = _contact(700_000_005, cid), _contact("700000006", cid)
    answer = {"lastPollTime": "2026-09-02T00:00:00.000Z",
              "completedContacts": [first, second, {**first, "totalDurationSeconds": 31}]}
    sim.set(served_bodies={"completed": (200, json.dumps(answer).encode())})
    backend = backend_for(sim)
    listed = [r for page in backend.pages(cid, since=None) for r in page.records]
    assert [(r.id, r.duration) for r in listed if isinstance(r, AttemptRecord)] == [
        ("700000005", 30), ("700000006", 30)]
    assert len(listed) == 2 and backend.listings[cid].repeats == 1


def test_an_attempt_twice_in_one_answer_is_listed_once(start_sim, backend_for) -> None:
    sim = start_sim()
    cid, list_id = sim.campaign_ids[0], sim.call_list_ids[0]
    attempt = {"externalId": "P4412-0001", "contactId": 900_000_001, "agentDispDesc": "Busy"}
    other = {**attempt, "contactId": 900_000_002}
    answer = {"resultSet": {"contactAttempts": [attempt, other, attempt]}}
    sim.set(served_bodies={"attempts": (200, json.dumps(answer).encode())})
    backend = backend_for(sim, source_type="call_list_attempts", call_list=list_id)
    assert listed_ids(backend, cid) == ["900000001", "900000002"]


@pytest.mark.parametrize(
    ("stray", "contact_id"),
    [(700_000_005, 700_000_005), (-7, -7), (5.5, "5.5")],
    ids=["number", "negative", "fraction"],
)
def test_a_bare_value_in_the_listing_is_not_taken_for_the_contact_with_that_id(
    start_sim, backend_for, stray, contact_id
) -> None:
    """A bare number among the records, the text of which is some contact's id: it is
    quarantined, and the contact itself is listed. Both were once known to paging by
    the same text, and the contact was dropped as already seen: never listed, and
    behind the watermark for good."""
    sim = start_sim()
    cid = sim.campaign_ids[0]
    answer = {"lastPollTime": "2026-09-02T00:00:00.000Z",
              "completedContacts": [stray, _contact(contact_id, cid)]}
    sim.set(served_bodies={"completed": (200, json.dumps(answer).encode())})
    listed = [r for page in backend_for(sim).pages(cid, since=None) for r in page.records]
    assert len(listed) == 2, listed
    bad, good = listed
    assert isinstance(bad, MalformedRecord) and bad.field == "(record)"
    assert isinstance(good, AttemptRecord) and good.id == str(contact_id)


def _survey_taken(sim, backend_for) -> list[str]:
    cid = sim.campaign_ids[0]
    contact = {**_contact(700_000_005, cid), "primaryDispositionId": 1}
    answer = {"lastPollTime": "2026-09-02T00:00:00.000Z", "completedContacts": [contact]}
    sim.set(served_bodies={**sim.behaviour.served_bodies,
                           "completed": (200, json.dumps(answer).encode())})
    return [r.outcome for page in backend_for(sim).pages(cid, since=None)
            for r in page.records if isinstance(r, AttemptRecord)]


def _attempts(sim, backend_for) -> list[str]:
    backend = backend_for(sim, source_type="call_list_attempts", call_list=sim.call_list_ids[0])
    return listed_ids(backend, sim.campaign_ids[0])


@pytest.mark.parametrize(
    ("kind", "answer", "read", "expected"),
    [
        pytest.param("completed", {"totalRecords": "about 300", "completedContacts": []},
                     lambda sim, b: listed_ids(b(sim), sim.campaign_ids[0]), [],
                     id="completed-totalRecords"),
        pytest.param("dispositions", {"totalRecords": "seven", "dispositions": [
                         {"dispositionId": 1, "dispositionName": "Survey Taken"}]},
                     _survey_taken, ["Survey Taken"], id="dispositions-totalRecords"),
        pytest.param("attempts", {"resultSet": {"listName": 4412, "totalRecords": "n/a",
                                                "contactAttempts": [
                         {"externalId": "P4412-0001", "contactId": 900_000_001}]}},
                     _attempts, ["900000001"], id="attempts-listName-totalRecords"),
        pytest.param("campaign_skills", {"skills": [{"skillId": 40001, "skillName": 40001}]},
                     lambda sim, b: b(sim).dialing(sim.campaign_ids[0]), {"skills": [40001]},
                     id="skills-skillName"),
    ],
)
def test_a_count_or_name_archiver_does_not_read_never_makes_an_answer_unreadable(
    start_sim, backend_for, kind, answer, read, expected
) -> None:
    """Each was once read into the answer's model: a count or a name of another type
    than expected failed the listing (or the dialing check) with "answer is not valid:
    field `totalRecords`", in every run, for a value nothing uses."""
    sim = start_sim()
    sim.set(served_bodies={kind: (200, json.dumps(answer).encode())})
    assert read(sim, backend_for) == expected

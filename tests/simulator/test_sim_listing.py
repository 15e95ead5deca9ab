from __future__ import annotations

from typing import Any

import pytest

from archiver.simulator import SimConfig, Simulator
from archiver.simulator.config import MALFORMED_KINDS, NO_ID_KINDS

from ._api import APPROVED, SMALL, Api, is_eligible, logged_in

FIELDS = {"id", "contactId", "outcomeCode", "disposition", "duration", "anonymized"}


def test_records_carry_the_contract_fields(api: Api) -> None:
    records = api.list_all(api.sim.campaign_ids[0])
    assert len(records) == SMALL.attempts_per_campaign
    well_formed = [r for r in records if set(r) >= FIELDS]
    assert well_formed
    for rec in records:
        assert set(rec) <= FIELDS | {"retentionDays"}
    retention = [r["retentionDays"] for r in records if "retentionDays" in r]
    assert None in retention
    assert any(isinstance(days, int) for days in retention)


def test_data_mixes_defects_a_client_must_handle(api: Api) -> None:
    records = api.list_all(api.sim.campaign_ids[0])
    assert any(r.get("anonymized") is False for r in records)
    assert any(not set(r) >= FIELDS or r.get("outcomeCode") is None
               or not isinstance(r.get("duration"), int) for r in records)
    outcomes = {r.get("outcomeCode") for r in records}
    assert outcomes > APPROVED
    assert "DO_NOT_CALL" in outcomes


def test_attempt_ids_are_unique_across_campaigns(api: Api) -> None:
    ids = [r["id"] for cid in api.sim.campaign_ids for r in api.list_all(cid)]
    assert len(ids) == len(set(ids)) == 2 * SMALL.attempts_per_campaign


def test_paging_returns_consecutive_slices(api: Api) -> None:
    cid = api.sim.campaign_ids[0]
    everything = api.list_all(cid)
    pages = [api.listing(cid, limit=150, offset=o).json() for o in (0, 150, 300)]
    assert [r["id"] for page in pages for r in page] == [r["id"] for r in everything]
    assert len(pages[-1]) == 100
    assert api.listing(cid, limit=10, offset=400).json() == []


def test_same_seed_gives_same_data() -> None:
    with Simulator(SMALL) as one, Simulator(SMALL) as two:
        assert one.campaign_ids == two.campaign_ids
        cid = one.campaign_ids[1]
        assert logged_in(one).list_all(cid) == logged_in(two).list_all(cid)


def test_explicit_campaign_ids_are_served() -> None:
    config = SimConfig(campaign_ids=["camp-a", "camp-b"], attempts_per_campaign=5)
    with Simulator(config) as sim:
        api = logged_in(sim)
        assert sim.campaign_ids == ["camp-a", "camp-b"]
        assert len(api.listing("camp-b").json()) == 5


def test_eligible_ids_match_a_strict_reading_of_the_listing(api: Api) -> None:
    sim = api.sim
    for cid in sim.campaign_ids:
        expected = {r["id"] for r in api.list_all(cid) if is_eligible(r)}
        assert sim.eligible_ids(cid, APPROVED) == expected
        summary = sim.campaigns()[cid]["expected"]
        assert summary["eligible_tutorial_outcomes"] == len(expected)
        assert summary["malformed"] > 0 and summary["unanonymized"] > 0


def test_eligible_ids_over_http(api: Api) -> None:
    cid = api.sim.campaign_ids[0]
    resp = api.http.get(f"{api.base}/_sim/eligible",
                        params={"campaign": cid, "approved": "BUSY,NO_ANSWER"}, timeout=5)
    assert resp.status_code == 200
    assert set(resp.json()["ids"]) == api.sim.eligible_ids(cid, {"BUSY", "NO_ANSWER"})


@pytest.mark.parametrize(
    "params",
    [
        {"status": "completed", "limit": 0, "offset": 0},
        {"status": "completed", "limit": 1001, "offset": 0},
        {"status": "completed", "limit": "ten", "offset": 0},
        {"status": "completed", "limit": 10, "offset": -1},
        {"status": "completed", "limit": 10},
        {"status": "pending", "limit": 10, "offset": 0},
        {"limit": 10, "offset": 0},
        {"status": "completed", "limit": 10, "offset": 0, "page": 2},
    ],
)
def test_bad_listing_queries_are_400(api: Api, params: dict[str, Any]) -> None:
    cid = api.sim.campaign_ids[0]
    resp = api.http.get(f"{api.base}/api/v2/campaigns/{cid}/attempts", params=params, timeout=5)
    assert resp.status_code == 400
    assert resp.json()["error"] and resp.json()["detail"]


def test_limit_bounds_are_inclusive(api: Api) -> None:
    cid = api.sim.campaign_ids[0]
    assert len(api.listing(cid, limit=1).json()) == 1
    assert api.listing(cid, limit=1000).status_code == 200


def test_unknown_campaign_is_404(api: Api) -> None:
    assert api.listing("no-such-campaign").status_code == 404
    assert api.patch("no-such-campaign", {"status": "PAUSED"}).status_code == 404


def test_unknown_path_and_wrong_method(api: Api) -> None:
    assert api.http.get(f"{api.base}/api/v2/nothing", timeout=5).status_code == 404
    cid = api.sim.campaign_ids[0]
    resp = api.http.delete(f"{api.base}/api/v2/campaigns/{cid}/attempts", timeout=5)
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "GET"


def test_records_without_an_id_are_served_only_when_their_kinds_are_named() -> None:
    config = SimConfig(campaign_ids=["camp-a"], attempts_per_campaign=400, malformed_rate=0.1,
                       malformed_kinds=list(NO_ID_KINDS))
    with Simulator(config) as sim:
        records = logged_in(sim).list_all("camp-a")
        kinds = sim.campaigns()["camp-a"]["expected"]["malformed_by_kind"]
    without = [r for r in records if not isinstance(r.get("id"), str) or not r["id"]]
    assert set(kinds) == set(NO_ID_KINDS)
    assert len(without) == sum(kinds.values())
    assert sum(r == {} for r in without) == kinds["empty_record"]
    assert sum("id" not in r for r in without if r) == kinds["missing_id"]
    assert sum(r.get("id", 0) is None for r in without) == kinds["null_id"]
    assert sum(r.get("id") == "" for r in without) == kinds["empty_id"]
    # By default every record has its id, and the same malformed records as before.
    with Simulator(SimConfig(campaign_ids=["camp-a"], attempts_per_campaign=400,
                             malformed_rate=0.1)) as sim:
        assert all(r.get("id") for r in logged_in(sim).list_all("camp-a"))
        assert set(sim.campaigns()["camp-a"]["expected"]["malformed_by_kind"]) <= set(
            MALFORMED_KINDS)


@pytest.mark.parametrize("kinds", [[], ["missing_id", "no_such_kind"]])
def test_unknown_or_no_malformed_kinds_are_refused(kinds: list[str]) -> None:
    with pytest.raises(ValueError, match="malformed_kinds"):
        SimConfig(malformed_kinds=kinds)

"""Runs against the cxone personality when the tenant misbehaves: tokens that expire
mid-run, 429 storms without Retry-After, 5xx answers. The run finishes, exports every
contact once, and never leaks a secret."""

from __future__ import annotations

import json
import sqlite3

from archiver.simulator.cxone import Behaviour, CxoneSimConfig, CxoneSimulator
from tests.support import read_report, run_cli
from tests.support_cxone import archive_files, cxone_env, cxone_policy

CONFIG = CxoneSimConfig(campaigns=2, contacts_per_campaign=120)


def exported_ids(tmp_path) -> list[str]:
    return [r["id"] for records in archive_files(tmp_path / "archive").values() for r in records]


def test_tokens_that_expire_mid_run_are_replaced_and_the_run_finishes(tmp_path):
    # The token answer claims an hour; the tenant drops each token after 0.3 s, so the
    # client learns of it from 401s, as with a token revoked or expired early.
    behaviour = Behaviour(
        token_lifetime_seconds=0.3, reported_expires_in=3600, latency_seconds=0.1
    )
    with CxoneSimulator(CONFIG, behaviour) as sim:
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids)
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "state")], cxone_env(sim))
        assert result.returncode == 0, result.stderr[-3000:]
        requests = sim.requests()
        expected = {c: set(sim.contacts(c)) for c in sim.campaign_ids}
    refused = [r for r in requests if r["status"] == 401]
    grants = [r for r in requests if r["path"].endswith("/auth/token")]
    assert refused, "tokens expired during the run"
    assert len(grants) > 1, "new tokens were fetched"
    ids = exported_ids(tmp_path)
    assert len(ids) == len(set(ids))
    assert set(ids) <= set().union(*expected.values())
    secret = sim.config.access_key_secret
    assert secret not in result.stdout + result.stderr
    assert sim.config.client_secret not in result.stdout + result.stderr


def test_a_429_storm_without_retry_after_slows_the_run_down_and_it_finishes(tmp_path):
    behaviour = Behaviour(invented_rate_limit_rps=4.0, invented_retry_after=None)
    # The storm is at the start, until the client has learnt the tenant's pace: sixty
    # contacts a campaign are pages enough.
    config = CxoneSimConfig(campaigns=2, contacts_per_campaign=60)
    with CxoneSimulator(config, behaviour) as sim:
        # The policy asks for far more than the tenant takes, in many small pages.
        policy = cxone_policy(
            tmp_path, sim, sim.campaign_ids, max_requests_per_second=200,
            source={"type": "completed_contacts", "page_size": 10},
        )
        result = run_cli(
            ["run", str(policy), "--state", str(tmp_path / "state")], cxone_env(sim), timeout=300
        )
        assert result.returncode == 0, result.stderr[-3000:]
        statuses = [r["status"] for r in sim.requests()]
    assert statuses.count(429) >= 3, "the storm happened"
    assert statuses[-1] != 429
    ids = exported_ids(tmp_path)
    assert ids and len(ids) == len(set(ids))


def test_server_errors_are_retried_and_nothing_is_exported_twice(tmp_path):
    with CxoneSimulator(CONFIG, Behaviour(error_5xx_rate=0.15)) as sim:
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids)
        args = ["run", str(policy), "--state", str(tmp_path / "state")]
        first = run_cli(args, cxone_env(sim))
        sim.set(error_5xx_rate=0.0)
        second = run_cli(args, cxone_env(sim))
        assert second.returncode == 0, first.stderr[-2000:] + second.stderr[-2000:]
        assert any(r["status"] >= 500 for r in sim.requests())
    ids = exported_ids(tmp_path)
    assert ids and len(ids) == len(set(ids))


def test_a_contact_with_an_absurd_duration_is_quarantined_not_a_crash(tmp_path):
    # Past what the state store can hold: once a traceback that stopped the run.
    config = CxoneSimConfig(campaigns=1, contacts_per_campaign=40)
    with CxoneSimulator(config) as sim:
        [cid] = sim.campaign_ids
        huge, floated = sorted(sim.contacts(cid))[3:5]
        sim.amend_contact(huge, totalDurationSeconds=10**30)
        sim.amend_contact(floated, totalDurationSeconds=1e30)
        policy = cxone_policy(tmp_path, sim, [cid])
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "state")], cxone_env(sim))
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        contacts = set(sim.contacts(cid))
    with sqlite3.connect(tmp_path / "state" / "state.db") as db:
        states = {a: (s, r) for a, s, r in db.execute(
            "SELECT attempt_id, state, reason FROM attempts")}
    for bad in (huge, floated):
        state, reason = states[bad]
        assert state == "quarantined" and "totalDurationSeconds" in reason, reason
    assert sorted(exported_ids(tmp_path)) == sorted(contacts - {huge, floated})


def test_a_contact_stamped_in_the_far_future_does_not_carry_the_watermark_past_today(
    tmp_path,
):
    """One record claims a lastUpdateTime in 9999. It sorts last and is exported, but the
    watermark stays below the server's time: a contact completed after the run is
    listed and exported by the next one, not skipped forever."""
    config = CxoneSimConfig(campaigns=1, contacts_per_campaign=40)
    with CxoneSimulator(config) as sim:
        [cid] = sim.campaign_ids
        odd = sorted(sim.contacts(cid))[3]
        sim.amend_contact(odd, lastUpdateTime="9999-12-31T00:00:00.000Z")
        policy = cxone_policy(tmp_path, sim, [cid])
        args = ["run", str(policy), "--state", str(tmp_path / "state")]
        first = run_cli(args, cxone_env(sim))
        assert first.returncode == 0, first.stderr[-3000:]
        assert odd in exported_ids(tmp_path)
        later = sim.add_contact(cid)
        second = run_cli(args, cxone_env(sim))
        assert second.returncode == 0, second.stderr[-3000:]
        contacts = set(sim.contacts(cid))
        since = [r["query"]["updatedSince"] for r in sim.requests() if r["kind"] == "completed"]
    assert since[-1] < "9999", since
    ids = exported_ids(tmp_path)
    assert later in ids, "the contact completed after the first run is exported"
    assert sorted(ids) == sorted(contacts), "every contact once"


NESTED = b"[" * 200_000 + b"]" * 200_000  # valid JSON, nested past any parser's stack


def test_an_answer_nested_past_the_parser_is_a_clear_error_not_a_traceback(tmp_path):
    config = CxoneSimConfig(campaigns=2, contacts_per_campaign=30)
    with CxoneSimulator(config, Behaviour(served_bodies={"completed": (200, NESTED)})) as sim:
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids)
        args = ["run", str(policy), "--state", str(tmp_path / "state")]
        result = run_cli(args, cxone_env(sim))
        assert result.returncode == 1, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        assert "not valid JSON" in result.stderr
        # The same depth in an error's body: the error is reported, its body unread.
        sim.set(served_bodies={"completed": (500, NESTED)})
        again = run_cli(args, cxone_env(sim))
        assert again.returncode == 1, again.stderr[-3000:]
        assert "Traceback" not in again.stderr
        assert "HTTP 500" in again.stderr


def test_a_dispositions_listing_that_ignores_skip_ends_the_run_with_a_clear_error(tmp_path):
    # Every page is the same thousand dispositions: paging by skip would never end.
    page = {"dispositions": [{"dispositionId": i, "dispositionName": f"Outcome {i}"}
                             for i in range(1, 1001)]}
    behaviour = Behaviour(served_bodies={"dispositions": (200, json.dumps(page).encode())})
    with CxoneSimulator(CxoneSimConfig(campaigns=1, contacts_per_campaign=20), behaviour) as sim:
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids)
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "state")],
                         cxone_env(sim), timeout=60)
        assert result.returncode == 1, result.stderr[-3000:]
        assert "already listed (is skip ignored?)" in result.stderr
        assert len([r for r in sim.requests() if r["kind"] == "dispositions"]) == 2


def test_dispositions_past_a_page_the_tenant_cuts_short_are_still_read(tmp_path):
    """The tenant has 150 dispositions and answers at most 40 a page, whatever `top`
    asks, while totalRecords counts them all. A page shorter than asked for is not the
    end: contacts dispositioned with the later ones are archived under their names, not
    quarantined as having a disposition the tenant does not know."""
    names = tuple(f"Outcome {n}" for n in range(1, 151))
    config = CxoneSimConfig(campaigns=1, contacts_per_campaign=120, dispositions=names,
                            no_disposition_share=0.0)
    with CxoneSimulator(config, Behaviour(invented_list_max_top=40)) as sim:
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids, approved=list(names))
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "state")],
                         cxone_env(sim))
        assert result.returncode == 0, result.stderr[-3000:]
        contacts = set(sim.contacts(sim.campaign_ids[0]))
    with sqlite3.connect(tmp_path / "state" / "state.db") as db:
        rows = db.execute("SELECT attempt_id, state, reason, outcome FROM attempts").fetchall()
    assert [(a, r) for a, s, r, _ in rows if s != "archived"] == [], "none quarantined"
    assert any(int(o.split()[-1]) > 40 for *_, o in rows), "dispositions past the first page"
    assert sorted(exported_ids(tmp_path)) == sorted(contacts)


def test_a_token_endpoint_that_stumbles_at_the_start_is_tried_again(tmp_path):
    # The first login meets a 503, then a 429 without Retry-After: both are tried
    # again, as they are for every other call, instead of refusing the run.
    with CxoneSimulator(CxoneSimConfig(campaigns=1, contacts_per_campaign=20)) as sim:
        sim.inject_token(503, 429)
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids)
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "state")],
                         cxone_env(sim))
        assert result.returncode == 0, result.stderr[-3000:]
        grants = [r["status"] for r in sim.requests() if r["kind"] == "token"]
        contacts = set(sim.contacts(sim.campaign_ids[0]))
    assert grants[:3] == [503, 429, 200]
    assert sorted(exported_ids(tmp_path)) == sorted(contacts)


def test_a_token_that_is_not_latin_1_ends_the_run_with_a_clear_error_not_a_traceback(tmp_path):
    # http.client cannot put it in an Authorization header: once a UnicodeEncodeError
    # traceback at the first API call.
    answer = {"access_token": "t\u00f6k\u20acn", "token_type": "bearer", "expires_in": 3600}
    behaviour = Behaviour(served_bodies={"token": (200, json.dumps(answer).encode())})
    with CxoneSimulator(CxoneSimConfig(campaigns=1, contacts_per_campaign=10), behaviour) as sim:
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids)
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "state")],
                         cxone_env(sim))
        api_calls = [r for r in sim.requests() if r["path"].startswith("/inContactAPI/")]
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "token answer: field `access_token`" in result.stderr
    assert not api_calls


def test_a_contact_twice_in_one_answer_is_counted_once(tmp_path):
    # Both copies were listed: "listed 3, archived 2, failed 0" on the progress line, and
    # one row in the state store.
    contact = {"contactId": 700000005, "lastUpdateTime": "2026-09-01T00:00:05.000Z",
               "campaignId": 1834501, "primaryDispositionId": 1, "totalDurationSeconds": 30}
    answer = {"lastPollTime": "2026-09-02T00:00:00.000Z",
              "completedContacts": [contact, {**contact, "contactId": 700000006}, contact]}
    behaviour = Behaviour(served_bodies={"completed": (200, json.dumps(answer).encode())})
    with CxoneSimulator(CxoneSimConfig(campaigns=1, contacts_per_campaign=10), behaviour) as sim:
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids)
        report_path = tmp_path / "report.json"
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "state"),
                          "--report", str(report_path)], cxone_env(sim))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "done: listed 2, archived 2, failed 0" in result.stderr, result.stderr[-3000:]
    assert read_report(report_path)["totals"]["archived"] == 2
    assert sorted(exported_ids(tmp_path)) == ["700000005", "700000006"]

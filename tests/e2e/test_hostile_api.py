"""End to end through real sockets: a run against a rate-limited, flaky, strict simulator."""

from __future__ import annotations

import sqlite3
import time

import pytest

from archiver.simulator import Faults
from tests.support import APPROVED, policy_dict, read_report, run_cli, sim_env, write_policy

CAMPAIGNS = [
    "11111111-1111-4111-8111-111111111111",
    "22222222-2222-4222-8222-222222222222",
    "33333333-3333-4333-8333-333333333333",
]


def test_hostile_api_every_eligible_attempt_archived_exactly_once(tmp_path, start_sim):
    active = CAMPAIGNS[1]
    sim = start_sim(
        Faults(
            rate_limit_rps=20,
            error_5xx_rate=0.05,
            token_lifetime_seconds=2,
            active_campaigns=[active],
        ),
        campaign_ids=CAMPAIGNS,
        attempts_per_campaign=1200,
        unanonymized_rate=1 / 300,
        seed=11,
    )
    doc = policy_dict(CAMPAIGNS)
    doc["connection"]["max_requests_per_second"] = 20
    # The tenant's 429s ask for a second; the policy follows up to two (at its default
    # 0.5 s a 429 would end the call: a call held up on a busy machine can meet one).
    doc["retry"]["max_backoff_seconds"] = 2
    # Small pages: about a hundred calls, so a 5 % fault rate is sure to show up.
    doc["source"]["page_size"] = 40
    policy = write_policy(tmp_path / "p.yaml", doc)
    report_path = tmp_path / "report.json"

    result = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "state"), "--report", str(report_path)],
        sim_env(sim),
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    ledger = sim.ledger()
    eligible = set().union(*(sim.eligible_ids(c, set(APPROVED)) for c in CAMPAIGNS))
    assert eligible, "the data set must hold eligible attempts"
    assert set(ledger) == eligible
    assert all(count == 1 for count in ledger.values())

    report = read_report(report_path)
    assert report["totals"]["archived"] == len(eligible)
    assert report["totals"]["failed"] == 0
    quarantined_reasons = {
        r["reason"] for c in report["campaigns"] for r in c["reasons"] if r["state"] == "quarantined"
    }
    assert "not anonymized" in quarantined_reasons

    status = sim.campaigns()[active]
    assert status["status"] == "ACTIVE"
    history = [h["status"] for h in status["history"]]
    assert history[0] == "ACTIVE" and "PAUSED" in history and history[-1] == "ACTIVE"
    # The faults really happened: 503s were injected, tokens expired and were renewed.
    stats = sim.stats()
    assert stats["injected_errors"] > 0
    assert stats["tokens_issued"] > 1
    assert stats["double_archived"] == 0


@pytest.mark.parametrize("keys", [True, False], ids=["keys kept", "no idempotency keys"])
def test_hung_response_times_out_is_retried_and_run_ends_in_bounded_time(
    tmp_path, start_sim, keys
):
    sim = start_sim(
        # Held back 100 s (the simulator lets them go when it stops), after the call took
        # effect. Without idempotency keys, an archive call sent again after its answer
        # was lost would archive twice: the listing settles it instead.
        Faults(hang_rate=0.25, hang_seconds=100, idempotency_keys=keys),
        campaign_ids=CAMPAIGNS[:1],
        attempts_per_campaign=400,
        seed=5,
    )
    doc = policy_dict(CAMPAIGNS[:1])
    doc["connection"]["timeout_seconds"] = 0.5
    doc["retry"]["max_attempts"] = 10
    # Pages of 20: some 25 calls, so at a 25 % rate a hang is all but certain (0.75**25 < 0.1 %).
    doc["source"]["page_size"] = 20
    # Batches of 20: some 14 archive calls, so one of them hangs all but surely (0.75**14 < 2 %).
    doc["batch"]["max_items"] = 20
    policy = write_policy(tmp_path / "p.yaml", doc)
    started = time.monotonic()
    result = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "state"), "--report", str(tmp_path / "r.json")],
        sim_env(sim),
        timeout=90,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    # A single hung answer would take 100 s; the policy's 0.5 s read timeout cut them short.
    assert sim.stats()["hangs"] > 0
    assert elapsed < 60
    ledger = sim.ledger()
    assert set(ledger) == sim.eligible_ids(CAMPAIGNS[0], set(APPROVED))
    assert all(n == 1 for n in ledger.values())
    assert sim.stats()["double_archived"] == 0
    report = read_report(tmp_path / "r.json")
    assert report["totals"]["archived"] == len(ledger)
    assert report["totals"]["failed"] == 0


def test_400_and_403_are_not_retried_name_campaign_and_cause_others_complete(tmp_path, start_sim):
    bad_request, forbidden, healthy = CAMPAIGNS
    sim = start_sim(
        Faults(fail_status={bad_request: 400, forbidden: 403}),
        campaign_ids=CAMPAIGNS,
        attempts_per_campaign=300,
        seed=3,
    )
    policy = write_policy(tmp_path / "p.yaml", policy_dict(CAMPAIGNS))
    result = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "state"), "--report", str(tmp_path / "r.json")],
        sim_env(sim),
    )
    assert result.returncode == 1, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert f"campaign {bad_request}" in output and "400" in output
    assert f"campaign {forbidden}" in output and "403" in output

    calls = [r for r in sim.requests() if r["path"].startswith("/api/")]
    for cid in (bad_request, forbidden):
        sent = [(r["method"], r["path"], tuple(sorted(r["query"].items()))) for r in calls if cid in r["path"]]
        # The listing looks ahead a page or two in parallel; no request is ever sent twice.
        assert sent and len(sent) == len(set(sent)), f"a 400/403 must not be retried: {sent}"
        assert all(method == "GET" for method, _, _ in sent), "nothing archived after a 400/403"
    assert set(sim.ledger()) == sim.eligible_ids(healthy, set(APPROVED))
    report = read_report(tmp_path / "r.json")
    by_id = {c["id"]: c for c in report["campaigns"]}
    assert by_id[healthy]["status"] == "done"
    assert by_id[bad_request]["status"] == "failed"
    assert by_id[forbidden]["status"] == "failed"


def test_partial_failures_are_found_in_the_listing_recorded_failed_and_retried_next_run(
    tmp_path, start_sim
):
    sim = start_sim(
        Faults(partial_failure_rate=0.05),
        campaign_ids=CAMPAIGNS[:2],
        attempts_per_campaign=500,
        seed=17,
    )
    policy = write_policy(tmp_path / "p.yaml", policy_dict(CAMPAIGNS[:2]))
    state = tmp_path / "state"
    first = run_cli(
        ["run", str(policy), "--state", str(state), "--report", str(tmp_path / "r1.json")],
        sim_env(sim),
    )
    assert first.returncode == 1, first.stderr[-2000:]
    eligible = set().union(*(sim.eligible_ids(c, set(APPROVED)) for c in CAMPAIGNS[:2]))
    archived = set(sim.ledger())
    missing = eligible - archived
    assert missing, "the fault must have failed some items"
    report = read_report(tmp_path / "r1.json")
    assert report["totals"]["archived"] == len(archived)
    assert report["totals"]["failed"] == len(missing)
    reasons = [r["reason"] for c in report["campaigns"] for r in c["reasons"] if r["state"] == "failed"]
    assert reasons and all("still listed after its batch" in r for r in reasons)

    sim.set_faults(Faults())
    second = run_cli(
        ["run", str(policy), "--state", str(state), "--report", str(tmp_path / "r2.json")],
        sim_env(sim),
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert set(sim.ledger()) == eligible
    assert all(n == 1 for n in sim.ledger().values())
    assert read_report(tmp_path / "r2.json")["archived_in_this_run"] == len(missing)


def test_on_violation_abort_stops_that_campaign_before_anything_is_archived(tmp_path, start_sim):
    sim = start_sim(
        campaign_ids=CAMPAIGNS[:2], attempts_per_campaign=900, unanonymized_rate=0.02, seed=19
    )
    assert all(sim.campaigns()[c]["expected"]["unanonymized"] > 0 for c in CAMPAIGNS[:2])
    doc = policy_dict(CAMPAIGNS[:2])
    doc["filters"][1]["on_violation"] = "abort"
    policy = write_policy(tmp_path / "p.yaml", doc)
    result = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "s"), "--report", str(tmp_path / "r.json")],
        sim_env(sim),
    )
    assert result.returncode == 1
    assert sim.ledger() == {}, "nothing of an aborted campaign is archived"
    archive_calls = [r for r in sim.requests() if r["path"].endswith("/contacts/archive")]
    assert archive_calls == []
    report = read_report(tmp_path / "r.json")
    assert sorted(c["id"] for c in report["campaigns"]) == sorted(CAMPAIGNS[:2])
    states = ("archived", "skipped", "quarantined", "failed", "held")
    for c in report["campaigns"]:
        assert c["status"] == "aborted"
        assert "not anonymized (on_violation: abort)" in c["reason"]
        assert c["archived"] == 0
        # Every attempt counted as listed has its state, the one that aborted included:
        # the listing stops there, and that attempt is set aside as not anonymized.
        assert c["listed"] > 0 and c["listed"] == sum(c[s] for s in states), c
        assert c["quarantined"] >= 1
    with sqlite3.connect(tmp_path / "s" / "state.db") as db:
        rows = db.execute("SELECT campaign_id, state, reason FROM attempts").fetchall()
    assert len(rows) == sum(c["listed"] for c in report["campaigns"])
    for cid in CAMPAIGNS[:2]:
        aborting = [r for r in rows if r[0] == cid and r[1] == "quarantined"
                    and "not anonymized (on_violation: abort)" in (r[2] or "")]
        assert len(aborting) == 1, rows


def test_on_active_skip_records_a_dialing_campaigns_attempts_skipped_and_the_run_succeeds(
    tmp_path, start_sim
):
    dialing, quiet = CAMPAIGNS[0], CAMPAIGNS[2]
    sim = start_sim(
        Faults(active_campaigns=[dialing]),
        campaign_ids=[dialing, quiet],
        attempts_per_campaign=600,
        seed=5,
    )
    doc = policy_dict([dialing, quiet])
    doc["campaigns"][0]["on_active"] = "skip"
    policy = write_policy(tmp_path / "p.yaml", doc)
    result = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "state"), "--report", str(tmp_path / "r.json")],
        sim_env(sim),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    by_id = {c["id"]: c for c in read_report(tmp_path / "r.json")["campaigns"]}
    assert by_id[dialing]["status"] == "skipped"
    # Every batch refused with 409 included: skipped, none failed, none archived.
    assert by_id[dialing]["failed"] == 0 and by_id[dialing]["archived"] == 0
    eligible = sim.eligible_ids(dialing, set(APPROVED))
    assert by_id[dialing]["skipped"] >= len(eligible)
    assert set(sim.ledger()) == sim.eligible_ids(quiet, set(APPROVED))


def test_an_archive_accepted_with_an_unreadable_answer_is_checked_against_the_listing(
    tmp_path, start_sim
):
    # The archive call takes effect, then its 200 answer is an HTML page: the batch's
    # attempts are gone from the listing, so they were archived, not failed.
    sim = start_sim(Faults(garble_next={"archive": 1}), campaign_ids=CAMPAIGNS[:1],
                    attempts_per_campaign=300, seed=29)
    policy = write_policy(tmp_path / "p.yaml", policy_dict(CAMPAIGNS[:1]))
    report_path = tmp_path / "r.json"
    result = run_cli(["run", str(policy), "--state", str(tmp_path / "state"), "--report",
                      str(report_path)], sim_env(sim))
    assert result.returncode == 0, result.stderr[-3000:]
    assert sim.stats()["garbled"] == 1, "one answer was lost after the call took effect"
    eligible = sim.eligible_ids(CAMPAIGNS[0], set(APPROVED))
    ledger = sim.ledger()
    assert set(ledger) == eligible and set(ledger.values()) == {1}
    report = read_report(report_path)
    assert report["totals"]["archived"] == len(eligible)
    assert report["totals"]["failed"] == 0

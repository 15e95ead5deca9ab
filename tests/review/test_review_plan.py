"""``archiver plan`` against a simulator on loopback: read-only, and it predicts the run."""

from __future__ import annotations

import json
from pathlib import Path

from archiver.cxone import wire
from archiver.simulator import Faults
from tests.support import policy_dict, read_report, run_cli, sim_env, write_policy

CAMPAIGNS = [
    "5a1f0c3e-0000-4000-8000-00000000000a",
    "6b2e1d4f-0000-4000-8000-00000000000b",
]
ATTEMPTS_PATHS = {wire.ATTEMPTS_PATH.format(campaign_id=c) for c in CAMPAIGNS}


def review_policy(tmp_path: Path, webhook_url: str, on_violation: str = "quarantine") -> Path:
    doc = policy_dict(CAMPAIGNS)
    doc["source"]["page_size"] = 70
    doc["batch"]["max_items"] = 60
    doc["filters"][1]["on_violation"] = on_violation
    doc["sinks"] = [
        {"type": "webhook", "url": webhook_url, "secret_env": "DW_WEBHOOK_SECRET"},
        {"type": "audit_log", "path": "audit/audit.jsonl"},
    ]
    return write_policy(tmp_path / "policy.yaml", doc)


def run_and_report(tmp_path: Path, policy: Path, sim, *, exit_code: int) -> dict:
    """``archiver run POLICY`` against ``sim``: its report, once it exits ``exit_code``."""
    report_path = tmp_path / "report.json"
    ran = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "state"), "--report", str(report_path)],
        sim_env(sim),
    )
    assert ran.returncode == exit_code, ran.stderr[-3000:]
    return read_report(report_path)


def test_plan_sends_only_reads_and_predicts_the_run(tmp_path, start_sim):
    # One campaign is dialing: a run pauses it, a plan must not.
    sim = start_sim(
        Faults(active_campaigns=[CAMPAIGNS[1]]),
        campaign_ids=CAMPAIGNS, attempts_per_campaign=400, seed=23,
        unanonymized_rate=0.02, malformed_rate=0.02, retention_rate=0.3,
    )
    policy = review_policy(tmp_path, sim.webhook_url)
    env = sim_env(sim)
    del env["DW_WEBHOOK_SECRET"]  # plan sends no webhook, so it needs no secret

    planned = run_cli(["plan", str(policy), "--format", "json"], env)
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)

    requests = sim.requests()
    assert requests, "the plan must have listed through the simulator"
    calls = {(r["method"], r["path"]) for r in requests}
    assert calls <= {("POST", wire.TOKEN_PATH)} | {("GET", p) for p in ATTEMPTS_PATHS}
    assert {("GET", p) for p in ATTEMPTS_PATHS} <= calls
    assert not [r for r in requests if r["method"] == "PATCH"]
    assert sim.ledger() == {}
    assert sim.webhooks() == []
    assert not (tmp_path / "audit").exists()
    dialing = sim.campaigns()[CAMPAIGNS[1]]
    assert dialing["status"] == "ACTIVE" and len(dialing["history"]) == 1

    sim.reset_log()
    report = run_and_report(tmp_path, policy, sim, exit_code=0)

    totals = plan["totals"]
    assert totals["archive"] > 0 and totals["skip"] > 0 and totals["quarantine"] > 0
    assert (totals["archive"], totals["skip"], totals["quarantine"]) == (
        report["totals"]["archived"], report["totals"]["skipped"], report["totals"]["quarantined"]
    )
    assert totals["listed"] == report["totals"]["listed"]
    by_id = {c["id"]: c for c in report["campaigns"]}
    for planned_campaign in plan["campaigns"]:
        ran_campaign = by_id[planned_campaign["id"]]
        assert planned_campaign["status"] == "ok"
        for plan_key, run_key in (("archive", "archived"), ("skip", "skipped"),
                                  ("quarantine", "quarantined")):
            assert planned_campaign[plan_key] == ran_campaign[run_key], (plan_key, planned_campaign["id"])
        planned_reasons = {(r["decision"], r["reason"]): r["count"] for r in planned_campaign["reasons"]}
        state = {"skip": "skipped", "quarantine": "quarantined"}
        ran_reasons = {
            (k, r["reason"]): r["count"]
            for r in ran_campaign["reasons"] for k, s in state.items() if r["state"] == s
        }
        assert planned_reasons == ran_reasons

    # The sample archive body is what the run really sent for those attempts.
    sent_items = {
        item["attemptId"]: item
        for r in sim.requests() if r["method"] == "POST" and r["path"].endswith("/contacts/archive")
        for item in r["body"]["items"]
    }
    samples = plan["samples"]["payloads"]
    body = next(p["body"] for p in samples if p["event"] == "archive_request")
    assert body["campaignId"] == plan["samples"]["campaign_id"]
    assert body["items"]
    for item in body["items"]:
        assert item == sent_items[item["attemptId"]]
    kinds = {(p["sink"], p["event"]) for p in samples}
    assert ("webhook", "batch_archived") in kinds
    assert {("audit_log", "run_started"), ("audit_log", "batch_archived"),
            ("audit_log", "run_finished")} <= kinds
    finished = next(p["body"] for p in samples if p["event"] == "run_finished")
    assert finished["counts"]["archived"] == report["totals"]["archived"]


def test_plan_text_shows_tables_reasons_and_samples(tmp_path, start_sim):
    sim = start_sim(campaign_ids=CAMPAIGNS, attempts_per_campaign=150, seed=5, unanonymized_rate=0.05)
    policy = review_policy(tmp_path, sim.webhook_url)
    env = sim_env(sim)
    del env["DW_WEBHOOK_SECRET"]
    result = run_cli(["plan", str(policy)], env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "nothing that changes state was sent" in out
    for cid in CAMPAIGNS:
        assert f"campaign {cid}" in out
    assert "SURVEY_TAKEN" in out and "730d=" in out
    assert "quarantine: not anonymized" in out
    assert "skip: outcome ANSWERING_MACHINE not approved" in out
    assert "archive · archive_request" in out
    assert "sinks[0] webhook · batch_archived" in out
    assert "sinks[1] audit_log · batch_archived" in out
    again = run_cli(["plan", str(policy)], env)
    assert again.stdout == out  # deterministic


def test_plan_shows_an_aborting_campaign(tmp_path, start_sim):
    sim = start_sim(campaign_ids=CAMPAIGNS, attempts_per_campaign=300, seed=3, unanonymized_rate=0.05)
    policy = review_policy(tmp_path, sim.webhook_url, on_violation="abort")
    env = sim_env(sim)
    del env["DW_WEBHOOK_SECRET"]

    result = run_cli(["plan", str(policy), "--format", "json"], env)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert sorted(c["id"] for c in plan["campaigns"]) == sorted(CAMPAIGNS)
    for campaign in plan["campaigns"]:
        assert campaign["status"] == "would_abort"
        assert "is not anonymized (on_violation: abort)" in campaign["reason"]
        assert campaign["archive"] == 0 and campaign["blocked"] > 0 and campaign["violations"] > 0
    assert plan["totals"]["archive"] == 0

    text = run_cli(["plan", str(policy)], env)
    assert text.returncode == 0, text.stderr
    assert "WOULD ABORT" in text.stdout
    assert "would abort: campaign" in text.stdout
    assert "a run stops listing it at the first violation (attempt " in text.stdout

    # A run stops listing each campaign at its first violation: the plan says what it
    # records of each, not what the whole listing holds.
    report = run_and_report(tmp_path, policy, sim, exit_code=1)
    by_id = {c["id"]: c for c in report["campaigns"]}
    for campaign in plan["campaigns"]:
        ran_campaign = by_id[campaign["id"]]
        stop = campaign["stops_at"]
        assert stop is not None and stop["whole_listing"] == 300 > campaign["listed"]
        assert (campaign["listed"], campaign["skip"], campaign["quarantine"], campaign["fail"]) == (
            ran_campaign["listed"], ran_campaign["skipped"], ran_campaign["quarantined"],
            ran_campaign["failed"],
        )
        assert ran_campaign["archived"] == 0
    totals = plan["totals"]
    assert (totals["listed"], totals["skip"], totals["quarantine"], totals["fail"]) == (
        report["totals"]["listed"], report["totals"]["skipped"],
        report["totals"]["quarantined"], report["totals"]["failed"],
    )


def test_plan_reports_a_campaign_it_cannot_list(tmp_path, start_sim):
    sim = start_sim(campaign_ids=CAMPAIGNS[:1], attempts_per_campaign=20, seed=3)
    policy = review_policy(tmp_path, sim.webhook_url)  # the second campaign does not exist there
    env = sim_env(sim)
    del env["DW_WEBHOOK_SECRET"]
    result = run_cli(["plan", str(policy), "--format", "json"], env)
    assert result.returncode == 1
    plan = json.loads(result.stdout)
    status = {c["id"]: c["status"] for c in plan["campaigns"]}
    assert status == {CAMPAIGNS[0]: "ok", CAMPAIGNS[1]: "error"}
    assert "404" in plan["campaigns"][1]["reason"]


def test_plan_samples_name_the_host_a_run_would_write(tmp_path, start_sim):
    # The policy says `embedded`; CXONE_BASE_URL sends the run to the simulator on loopback.
    # The samples must say what the run's own lines say, not the policy's host.
    sim = start_sim(campaign_ids=CAMPAIGNS, attempts_per_campaign=50, seed=5)
    policy = review_policy(tmp_path, sim.webhook_url)
    planned = run_cli(["plan", str(policy), "--format", "json"], sim_env(sim))
    assert planned.returncode == 0, planned.stderr
    samples = json.loads(planned.stdout)["samples"]["payloads"]
    report_path = tmp_path / "report.json"
    ran = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "state"), "--report", str(report_path)],
        sim_env(sim),
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    written = [json.loads(line) for line in (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()]
    hosts = {line["target"]["host"] for line in written}
    assert hosts == {sim.base_url.removeprefix("http://")}
    shown = {p["body"]["target"]["host"] for p in samples if "target" in p["body"]}
    assert shown == hosts
    assert len([p for p in samples if "target" in p["body"]]) >= 3

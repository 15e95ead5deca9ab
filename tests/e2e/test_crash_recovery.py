"""Exactly once across crashes: SIGKILL at many points, run again, nothing twice, nothing lost."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from archiver.simulator import Faults
from tests.support import (
    APPROVED,
    policy_dict,
    read_report,
    run_cli,
    sim_env,
    terminate_once_archiving,
    write_policy,
)

CAMPAIGNS = ["aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"]
SIGKILL_EXIT = -9


def crash_policy(tmp_path: Path, webhook_url: str, campaigns: list[str] = CAMPAIGNS) -> Path:
    doc = policy_dict(campaigns)
    doc["source"]["page_size"] = 50
    doc["batch"]["max_items"] = 40
    doc["connection"]["max_in_flight"] = 3
    doc["sinks"] = [
        {"type": "webhook", "url": webhook_url, "secret_env": "DW_WEBHOOK_SECRET"},
        {"type": "audit_log", "path": "audit/audit.jsonl"},
    ]
    return write_policy(tmp_path / "policy.yaml", doc)


DONE_BATCHES = "SELECT id FROM batches WHERE status = 'done' AND archived_count > 0"


def batch_ids_in_store(state: Path | str) -> set[str]:
    """Batches that archived something, from a state folder or a PostgreSQL URL."""
    if isinstance(state, str):
        import psycopg

        with psycopg.connect(state) as pg:
            return {r[0] for r in pg.execute(DONE_BATCHES).fetchall()}
    with sqlite3.connect(state / "state.db") as db:
        return {r[0] for r in db.execute(DONE_BATCHES).fetchall()}


def check_exactly_once(sim, tmp_path: Path, state: Path | str, env: dict[str, str]) -> None:
    """Every eligible attempt archived once, one webhook id per batch, the audit chain
    intact and ending where the state store (folder or PostgreSQL URL) says."""
    ledger = sim.ledger()
    eligible = set().union(*(sim.eligible_ids(c, set(APPROVED)) for c in CAMPAIGNS))
    assert set(ledger) == eligible, "every eligible attempt archived"
    assert [a for a, n in ledger.items() if n != 1] == [], "no attempt archived twice"

    batches = batch_ids_in_store(state)
    accepted = [d for d in sim.webhooks() if d["status"] == 204 and d["valid"]]
    ids_by_batch: dict[str, set[str]] = {}
    for d in accepted:
        if d["body"].get("type") == "batch_archived":
            ids_by_batch.setdefault(d["body"]["batch_id"], set()).add(d["id"])
    assert set(ids_by_batch) == batches, "every batch event delivered at least once"
    assert all(len(ids) == 1 for ids in ids_by_batch.values()), "one webhook-id per batch"

    audit = tmp_path / "audit" / "audit.jsonl"
    verify = run_cli(["audit", "verify", str(audit), "--state", str(state)], env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "matches the state store" in verify.stdout
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    event_ids = [line["event_id"] for line in lines]
    assert len(event_ids) == len(set(event_ids)), "no audit line written twice"
    audited = {line["batch_id"] for line in lines if line["event"] == "batch_archived"}
    assert audited == batches, "every batch has its audit line"


# (failpoint, n-th time it is reached)
CRASH_POINTS = [
    ("page_listed", 1),
    ("page_listed", 7),
    ("batch_prepared", 1),
    ("batch_prepared", 5),
    ("batch_posted", 1),
    ("batch_posted", 4),
    ("batch_recorded", 2),
    ("event_delivering", 3),
    ("event_delivered", 1),
    ("event_delivered", 6),
    ("campaign_paused", 1),
    ("run_finishing", 1),
]


@pytest.mark.parametrize(("point", "nth"), CRASH_POINTS, ids=[f"{p}-{n}" for p, n in CRASH_POINTS])
def test_sigkill_then_rerun_archives_everything_exactly_once(tmp_path, start_sim, point, nth):
    sim = start_sim(
        Faults(active_campaigns=[CAMPAIGNS[0]]),
        campaign_ids=CAMPAIGNS,
        attempts_per_campaign=300,
        seed=21,
    )
    policy = crash_policy(tmp_path, sim.webhook_url)
    state = tmp_path / "state"
    env = sim_env(sim)
    args = ["run", str(policy), "--state", str(state), "--report", str(tmp_path / "report.json")]

    crashed = run_cli(args, {**env, "ARCHIVER_FAILPOINT": f"{point}:{nth}"})
    assert crashed.returncode == SIGKILL_EXIT, crashed.stderr[-2000:]

    final = run_cli(args, env)
    assert final.returncode == 0, final.stderr[-3000:]
    read_report(tmp_path / "report.json")
    check_exactly_once(sim, tmp_path, state, env)
    assert sim.campaigns()[CAMPAIGNS[0]]["status"] == "ACTIVE", "paused campaign restored"


def test_webhook_receiver_down_for_a_whole_run_then_delivered_with_original_ids(
    tmp_path, start_sim
):
    sim = start_sim(
        Faults(webhook_status=503), campaign_ids=CAMPAIGNS, attempts_per_campaign=200, seed=4
    )
    policy = crash_policy(tmp_path, sim.webhook_url)
    state = tmp_path / "state"
    env = sim_env(sim)
    args = ["run", str(policy), "--state", str(state), "--report", str(tmp_path / "r1.json")]

    first = run_cli(args, env)
    assert first.returncode == 0, first.stderr[-3000:]
    report = read_report(tmp_path / "r1.json")
    eligible = set().union(*(sim.eligible_ids(c, set(APPROVED)) for c in CAMPAIGNS))
    assert set(sim.ledger()) == eligible, "archiving finished although the receiver was down"
    undelivered = sum(v["pending"] for k, v in report["outbox"].items() if k.startswith("webhook"))
    assert undelivered == len(batch_ids_in_store(state))
    assert "undelivered" in first.stdout + first.stderr
    refused_ids = {d["id"] for d in sim.webhooks()}

    sim.set_faults(Faults())
    second = run_cli([*args[:-1], str(tmp_path / "r2.json")], env)
    assert second.returncode == 0, second.stderr[-3000:]
    delivered = {d["id"] for d in sim.webhooks() if d["status"] == 204}
    assert refused_ids <= delivered, "the next run delivered the same events with their ids"
    report2 = read_report(tmp_path / "r2.json")
    assert all(v["pending"] == 0 for v in report2["outbox"].values())
    check_exactly_once(sim, tmp_path, state, env)


def test_second_concurrent_run_refuses_and_archives_nothing(tmp_path, start_sim):
    # Every answer takes a second until the second run has refused, and the first run sends
    # one call at a time: it holds the state store for many seconds (some twenty calls)
    # however slowly the second one starts. Then answers come at once again.
    sim = start_sim(
        Faults(latency_ms=1000), campaign_ids=CAMPAIGNS[:1], attempts_per_campaign=400, seed=8
    )
    doc = policy_dict(CAMPAIGNS[:1])
    doc["source"]["page_size"] = 50
    doc["batch"]["max_items"] = 40
    doc["connection"]["max_in_flight"] = 1
    policy = write_policy(tmp_path / "policy.yaml", doc)
    state = tmp_path / "state"
    env = sim_env(sim)
    results: dict[str, object] = {}

    def first_run() -> None:
        results["first"] = run_cli(["run", str(policy), "--state", str(state)], env)

    runner = threading.Thread(target=first_run)
    runner.start()
    try:
        # The first run holds the lock once its state database exists (it is created
        # under the lock).
        deadline = time.monotonic() + 60
        while not (state / "state.db").exists():
            assert runner.is_alive(), f"the first run ended first: {results}"
            assert time.monotonic() < deadline, "the first run never opened its state store"
            time.sleep(0.05)
        second = run_cli(["run", str(policy), "--state", str(state)], env)
    finally:
        sim.set_faults(Faults())
        runner.join()
    assert second.returncode == 75, second.stdout + second.stderr
    assert "another archiver run holds the state store" in second.stderr
    first = results["first"]
    assert first.returncode == 0, first.stderr[-2000:]  # type: ignore[attr-defined]
    assert all(n == 1 for n in sim.ledger().values())
    assert set(sim.ledger()) == sim.eligible_ids(CAMPAIGNS[0], set(APPROVED))


def test_lines_cut_off_the_end_of_the_audit_log_are_caught_with_the_state_store(
    tmp_path, start_sim
):
    sim = start_sim(campaign_ids=CAMPAIGNS[:1], attempts_per_campaign=200, seed=9)
    policy = crash_policy(tmp_path, sim.webhook_url, CAMPAIGNS[:1])
    state = tmp_path / "state"
    env = sim_env(sim)
    assert run_cli(["run", str(policy), "--state", str(state)], env).returncode == 0
    audit = tmp_path / "audit" / "audit.jsonl"
    lines = audit.read_text().splitlines(keepends=True)
    assert len(lines) >= 3
    intact = run_cli(["audit", "verify", str(audit), "--state", str(state)], env)
    assert intact.returncode == 0, intact.stdout + intact.stderr

    audit.write_text("".join(lines[:-1]))
    alone = run_cli(["audit", "verify", str(audit)], env)
    assert alone.returncode == 0, "the chain alone cannot see a cut end"
    checked = run_cli(["audit", "verify", str(audit), "--state", str(state)], env)
    assert checked.returncode == 1
    assert f"{audit}:{len(lines)}:" in checked.stdout
    assert f"recorded seq {len(lines)}" in checked.stdout


def test_sigterm_while_paused_restores_the_campaign_and_a_rerun_finishes(tmp_path, start_sim):
    import subprocess
    import sys

    # Slow answers (some twenty batches of 150 ms each after the first) leave seconds to
    # signal between the first batch and the last; the rerun gets quick answers.
    sim = start_sim(
        Faults(active_campaigns=[CAMPAIGNS[0]], latency_ms=150),
        campaign_ids=CAMPAIGNS[:1],
        attempts_per_campaign=600,
        seed=12,
    )
    doc = policy_dict(CAMPAIGNS[:1])
    doc["batch"]["max_items"] = 20
    doc["connection"]["max_in_flight"] = 1
    policy = write_policy(tmp_path / "p.yaml", doc)
    state = tmp_path / "state"
    env = sim_env(sim)
    args = [sys.executable, "-m", "archiver", "run", str(policy), "--state", str(state)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while sim.campaigns()[CAMPAIGNS[0]]["status"] != "PAUSED":
        assert time.monotonic() < deadline and proc.poll() is None, "the campaign was never paused"
        time.sleep(0.05)
    # Signal once part of the work is done, however slowly the machine got there.
    terminate_once_archiving(proc, sim, deadline)
    assert sim.campaigns()[CAMPAIGNS[0]]["status"] == "ACTIVE", "status restored on SIGTERM"
    archived_before = set(sim.ledger())
    eligible = sim.eligible_ids(CAMPAIGNS[0], set(APPROVED))
    assert archived_before and archived_before < eligible, "stopped part-way"

    sim.set_faults(Faults(active_campaigns=[CAMPAIGNS[0]]))
    final = run_cli(["run", str(policy), "--state", str(state)], env)
    assert final.returncode == 0, final.stderr[-2000:]
    assert set(sim.ledger()) == eligible
    assert all(n == 1 for n in sim.ledger().values())
    assert sim.campaigns()[CAMPAIGNS[0]]["status"] == "ACTIVE"


def test_a_run_with_nothing_left_to_do_says_so_and_changes_nothing(tmp_path, start_sim):
    sim = start_sim(campaign_ids=CAMPAIGNS[:1], attempts_per_campaign=300, seed=13)
    policy = crash_policy(tmp_path, sim.webhook_url, CAMPAIGNS[:1])
    state = tmp_path / "state"
    env = sim_env(sim)
    assert run_cli(["run", str(policy), "--state", str(state)], env).returncode == 0
    ledger = sim.ledger()
    sim.reset_log()

    again = run_cli(["run", str(policy), "--state", str(state), "--report", str(tmp_path / "r.json")], env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "nothing left to do" in again.stdout
    assert sim.ledger() == ledger
    changing = [
        r for r in sim.requests()
        if r["method"] in ("POST", "PATCH") and r["path"].startswith("/api/")
    ]
    assert changing == []
    assert read_report(tmp_path / "r.json")["archived_in_this_run"] == 0


def test_the_metrics_after_a_killed_run_count_what_it_archived(tmp_path, start_sim):
    """archiver_archived_attempts_total counts every attempt the policy's runs archived,
    those of a run killed before it could add its own figures too: the batches it
    recorded are in the store, so the next run adds them (and counts it interrupted)."""
    from prometheus_client.parser import text_string_to_metric_families

    sim = start_sim(Faults(), campaign_ids=CAMPAIGNS, attempts_per_campaign=300, seed=21)
    policy = crash_policy(tmp_path, sim.webhook_url)
    state = tmp_path / "state"
    env = sim_env(sim)
    metrics = tmp_path / "archiver.prom"
    args = ["run", str(policy), "--state", str(state), "--metrics", str(metrics)]

    crashed = run_cli(args, {**env, "ARCHIVER_FAILPOINT": "batch_recorded:3"})
    assert crashed.returncode == SIGKILL_EXIT, crashed.stderr[-2000:]
    assert len(sim.ledger()) >= 3 * 40, "the killed run archived its recorded batches"
    final = run_cli(args, env)
    assert final.returncode == 0, final.stderr[-3000:]

    archived: dict[str, float] = {}
    runs: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics.read_text()):
        for s in family.samples:
            if s.name == "archiver_archived_attempts_total":
                archived[s.labels["campaign"]] = s.value
            elif s.name == "archiver_runs_total":
                runs[s.labels["status"]] = s.value
    by_campaign = {c: 0 for c in CAMPAIGNS}
    for attempt_id in sim.ledger():
        owner = next(c for c in CAMPAIGNS if attempt_id in sim.eligible_ids(c, set(APPROVED)))
        by_campaign[owner] += 1
    assert archived == by_campaign, "the counter is what the simulator archived"
    assert runs == {"interrupted": 1, "completed": 1}

"""What a rerun reports after a run killed with archive batches in flight: the figures
must be the server's. Attempts the killed run's requests archived, whose answers it
never recorded, are reconciled by the rerun (they left the listing): counted as
``reconciled``, neither archived in this run nor listed by it."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from archiver.engine.payloads import RECONCILED
from archiver.governance.evidence import _check_report
from archiver.simulator import Faults
from tests.e2e.test_crash_recovery import CAMPAIGNS, SIGKILL_EXIT, crash_policy
from tests.support import APPROVED, read_report, run_cli, sim_env

ATTEMPTS = 300
ARCHIVE_PATH = "/contacts/archive"


def _settled_ledger(sim) -> dict[str, int]:
    """The simulator's ledger once the calls the killed run left in flight are answered:
    the same twice, half a second apart."""
    before = sim.ledger()
    deadline = time.monotonic() + 10
    while True:
        time.sleep(0.5)
        now = sim.ledger()
        if now == before or time.monotonic() > deadline:
            return now
        before = now


def _recorded_archived(state: Path) -> set[str]:
    """The attempts the state store holds as archived (what the killed run recorded)."""
    with sqlite3.connect(state / "state.db") as db:
        return {r[0] for r in db.execute("SELECT attempt_id FROM attempts WHERE state = 'archived'")}


def _archived_by_requests(requests: list[dict]) -> list[str]:
    """The attempts of the archive calls the simulator answered 200: what they archived
    (no item fails here, and a call it replayed for its key would name attempts archived
    before, which the caller sees)."""
    return [
        item["attemptId"]
        for r in requests
        if r["method"] == "POST" and r["path"].endswith(ARCHIVE_PATH) and r["status"] == 200
        for item in r["body"]["items"]
    ]


def test_a_rerun_reports_what_it_archived_apart_from_what_the_killed_run_archived(
    tmp_path, start_sim
):
    # Answers take 40 ms: the calls in flight when the run is killed are answered too.
    sim = start_sim(
        Faults(latency_ms=40), campaign_ids=CAMPAIGNS, attempts_per_campaign=ATTEMPTS, seed=33
    )
    policy = crash_policy(tmp_path, sim.webhook_url)
    state = tmp_path / "state"
    env = sim_env(sim)
    args = ["run", str(policy), "--state", str(state)]
    owner = {a: c for c in CAMPAIGNS for a in sim.eligible_ids(c, set(APPROVED))}

    # Killed right after its fourth archive call was answered, before recording it; with
    # three calls in flight, others were sent and answered but never recorded either.
    crashed = run_cli(args, {**env, "ARCHIVER_FAILPOINT": "batch_posted:4"})
    assert crashed.returncode == SIGKILL_EXIT, crashed.stderr[-2000:]
    by_killed_run = set(_settled_ledger(sim))
    recorded = _recorded_archived(state)
    unrecorded = by_killed_run - recorded
    assert recorded < by_killed_run and unrecorded, "batches archived but not recorded"

    sim.reset_log()
    report_path, metrics = tmp_path / "rerun.json", tmp_path / "archiver.prom"
    final = run_cli([*args, "--report", str(report_path), "--metrics", str(metrics)], env)
    assert final.returncode == 0, final.stderr[-3000:]
    ledger = sim.ledger()
    assert all(n == 1 for n in ledger.values()), "nothing archived twice"
    by_rerun = set(ledger) - by_killed_run
    sent = _archived_by_requests(sim.requests())
    assert len(sent) == len(set(sent)) and set(sent) == by_rerun, "the rerun's calls archived these"

    report = read_report(report_path)
    totals = report["totals"]
    # Shown when an assertion below fails.
    print(f"killed run archived {len(by_killed_run)} ({len(recorded)} recorded, "
          f"{len(unrecorded)} not); rerun archived {len(by_rerun)}; report: listed "
          f"{totals['listed']}, archived {totals['archived']}, archived_in_this_run "
          f"{report['archived_in_this_run']}, reconciled {totals.get('reconciled')}")
    # What the server archived during the rerun, and nothing the killed run archived.
    assert report["archived_in_this_run"] == len(by_rerun)
    # What the killed run archived and never recorded: found gone from the listing.
    assert totals["reconciled"] == len(unrecorded)
    # The rerun listed what the server still listed: everything not archived before it.
    assert totals["listed"] == len(CAMPAIGNS) * ATTEMPTS - len(by_killed_run)
    assert totals["archived"] == len(by_rerun)
    for campaign in report["campaigns"]:
        cid = campaign["id"]
        assert campaign["archived_in_this_run"] == sum(owner[a] == cid for a in by_rerun), cid
        assert campaign["reconciled"] == sum(owner[a] == cid for a in unrecorded), cid
        assert campaign["listed"] == ATTEMPTS - sum(owner[a] == cid for a in by_killed_run), cid

    assert f"failed 0; reconciled {len(unrecorded)}" in final.stdout

    # The signed run_finished line says the same, and the run's signed lines vouch for
    # the report (`archiver evidence verify` checks them so).
    lines = [json.loads(x) for x in (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()]
    mine = [x for x in lines if x["run_id"] == report["run_id"]]
    [finished] = [x for x in mine if x["event"] == "run_finished"]
    assert finished["counts"]["listed"] == totals["listed"]
    assert finished["counts"]["archived"] == totals["archived"]
    assert finished["counts"]["reconciled"] == len(unrecorded)
    assert sum(len(x["attempt_ids"]) for x in mine if x["event"] == "batch_archived"
               and x["result"]["status"] == RECONCILED) == len(unrecorded)
    checks = _check_report(report, mine)
    assert all(c.ok for c in checks), [c.detail for c in checks if not c.ok]
    [agreed] = [c.detail for c in checks if c.detail.startswith("agrees")]
    assert "archived_in_this_run" in agreed and "campaigns[].reconciled" in agreed

    # The running total counts every attempt archived, by either run, once.
    counted = sum(
        s.value for family in text_string_to_metric_families(metrics.read_text())
        for s in family.samples if s.name == "archiver_archived_attempts_total"
    )
    assert counted == len(ledger)

    # And so does `archiver runs`.
    runs = run_cli(["runs", "--state", str(state), "--format", "json"], env)
    assert runs.returncode == 0, runs.stderr
    row = next(r for r in json.loads(runs.stdout) if r["id"] == report["run_id"])
    assert (row["listed"], row["archived"], row["reconciled"]) == (
        totals["listed"], totals["archived"], len(unrecorded))

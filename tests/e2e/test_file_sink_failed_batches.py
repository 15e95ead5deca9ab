"""A batch whose items all fail archives none: no ``file`` sink is asked to write it,
and its audit line says so, with no file and no traceback."""

from __future__ import annotations

import json
from pathlib import Path

from archiver.simulator.config import Faults
from tests.support import policy_dict, read_report, run_cli, sim_env, write_policy


def test_batches_that_archive_none_are_recorded_failed_with_no_file_and_no_traceback(
    tmp_path: Path, start_sim
) -> None:
    sim = start_sim(Faults(partial_failure_rate=1.0), attempts_per_campaign=300, seed=7)
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    doc = policy_dict(list(sim.campaign_ids), sinks=[
        {"type": "audit_log", "path": "audit.jsonl"},
        {"type": "file", "path": "archive/{campaign}/{date}/"},
    ])
    doc["connection"]["base_url"] = sim.base_url
    policy = write_policy(tmp_path / "repo" / "policy.yaml", doc)
    report = tmp_path / "report.json"
    ran = run_cli(["run", str(policy), "--state", str(tmp_path / "state"), "--report",
                   str(report)], sim_env(sim))
    out = ran.stdout + ran.stderr
    assert ran.returncode == 1 and "Traceback" not in out, out[-3000:]
    totals = read_report(report)["totals"]
    assert totals["archived"] == 0 and totals["failed"] > 0, totals
    assert sim.ledger() == {}
    lines = [json.loads(line) for line in (tmp_path / "repo" / "audit.jsonl").open()]
    batches = [line for line in lines if line["event"] == "batch_archived"]
    assert batches and all(b["result"]["archived_count"] == 0 and b["files"] == []
                           for b in batches), batches[:2]
    assert sum(b["result"]["failed_count"] for b in batches) == totals["failed"]
    assert not list((tmp_path / "repo").glob("archive/**/*.gz"))

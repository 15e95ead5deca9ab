"""Legal holds through `archiver run`, against the simulator over real sockets: a hold
placed before a run keeps its attempts out of every archive call, audit line and webhook;
once the hold ends, the next run archives them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from archiver.simulator import Faults, Simulator
from tests.support import REPO, WEBHOOK_SECRET, demo_at_test_pace, run_cli, sim_env

DEMO_APPROVED = {"SURVEY_TAKEN", "NO_ANSWER", "BUSY", "DISCONNECTED", "CALLBACK_REQUESTED"}
CASE = "LIT-2026-114"
DEMO_CAMPAIGNS = [
    c["id"] for c in yaml.safe_load((REPO / "examples" / "demo.yaml").read_text())["campaigns"]
]


def demo_copy(tmp_path: Path, sim_base: str, webhook_url: str) -> tuple[Path, list[str]]:
    """examples/ copied, its demo pointed at the test's simulator and listing holds/."""
    folder = tmp_path / "examples"
    # What the repository ships, not what runs of the demo left beside it.
    shutil.copytree(REPO / "examples", folder,
                    ignore=shutil.ignore_patterns(".archiver", "archive", "audit"))
    policy = demo_at_test_pace(folder / "demo.yaml")
    doc = yaml.safe_load(policy.read_text())
    doc["connection"]["base_url"] = sim_base
    for sink in doc["sinks"]:
        if sink["type"] == "webhook":
            sink["url"] = webhook_url
    doc["holds"] = [f"holds/{CASE}.yaml"]
    policy.write_text(yaml.safe_dump(doc, sort_keys=False))
    return policy, [c["id"] for c in doc["campaigns"]]


def write_hold(folder: Path, *, attempts: list[str], campaigns: list[str],
               until: str | None = None) -> Path:
    hold = folder / "holds" / f"{CASE}.yaml"
    hold.parent.mkdir(exist_ok=True)
    body = {"case": CASE, "placed_by": "legal@example.com", "attempts": attempts,
            "contacts": [], "campaigns": campaigns}
    if until is not None:
        body["until"] = until
    hold.write_text(yaml.safe_dump(body, sort_keys=False))
    return hold


def audit_lines(folder: Path) -> list[dict[str, object]]:
    path = folder / "audit" / "demo-audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_hold_keeps_attempts_out_of_a_run_and_the_next_run_archives_them_once_it_ends(
    tmp_path, start_sim
):
    sim = start_sim(Faults(), seed=7, campaign_ids=DEMO_CAMPAIGNS, attempts_per_campaign=300)
    policy, campaigns = demo_copy(tmp_path, sim.base_url, sim.webhook_url)
    assert campaigns == DEMO_CAMPAIGNS
    first, held_campaign = campaigns[0], campaigns[1]
    held_attempt = min(sim.eligible_ids(first, DEMO_APPROVED))
    hold = write_hold(policy.parent, attempts=[held_attempt], campaigns=[held_campaign])
    env = sim_env(sim, DEMO_WEBHOOK_SECRET=WEBHOOK_SECRET)
    state = tmp_path / "state"

    checked = run_cli(["validate", str(policy)], env)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # Run 1: the hold is on.
    result = run_cli(["run", str(policy), "--state", str(state), "--report",
                      str(tmp_path / "r1.json")], env)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "r1.json").read_text())
    by_id = {c["id"]: c for c in report["campaigns"]}
    whole = by_id[held_campaign]
    assert whole["listed"] > 0 and whole["held"] == whole["listed"]
    assert whole["archived"] == 0
    reason = f"legal hold {CASE} (holds/{CASE}.yaml)"
    assert [(r["state"], r["reason"]) for r in whole["reasons"]] == [("held", reason)]
    assert by_id[first]["held"] == 1
    assert {"state": "held", "reason": reason, "count": 1} in by_id[first]["reasons"]
    assert report["totals"]["held"] == whole["listed"] + 1
    for c in [*report["campaigns"], report["totals"]]:
        assert c["listed"] == sum(
            c[s] for s in ("archived", "skipped", "quarantined", "failed", "held")
        )
    assert "held" in result.stdout

    ledger = sim.ledger()
    held_ids = sim.eligible_ids(held_campaign, DEMO_APPROVED) | {held_attempt}
    assert ledger, "the attempts no hold covers were archived"
    assert not held_ids & set(ledger), "no held attempt reached an archive call"
    lines = audit_lines(policy.parent)
    archived_lines = [x for x in lines if x["event"] == "batch_archived"]
    assert archived_lines
    assert all(x["campaign_id"] != held_campaign for x in archived_lines)
    audited_ids = {a for x in archived_lines for a in x["attempt_ids"]}  # type: ignore[attr-defined]
    assert not held_ids & audited_ids
    deliveries = sim.webhooks()
    assert deliveries
    for d in deliveries:
        body = json.dumps(d["body"])
        assert held_attempt not in body
        assert not any(a in body for a in held_ids)

    # The hold ends: its last day was yesterday.
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    write_hold(policy.parent, attempts=[held_attempt], campaigns=[held_campaign], until=yesterday)
    assert hold.exists()
    result = run_cli(["run", str(policy), "--state", str(state), "--report",
                      str(tmp_path / "r2.json")], env)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "r2.json").read_text())
    assert report["totals"]["held"] == 0
    ledger = sim.ledger()
    assert held_ids <= set(ledger), "every formerly held eligible attempt archived"
    assert all(n == 1 for n in ledger.values()), "nothing archived twice"
    second = [x for x in audit_lines(policy.parent)[len(lines):] if x["event"] == "batch_archived"]
    assert held_ids <= {a for x in second for a in x["attempt_ids"]}  # type: ignore[attr-defined]


def test_validate_points_at_a_missing_or_broken_hold_file(tmp_path, start_sim):
    sim = start_sim(Faults(), seed=7, campaign_ids=DEMO_CAMPAIGNS, attempts_per_campaign=10)
    policy, _ = demo_copy(tmp_path, sim.base_url, sim.webhook_url)
    env = sim_env(sim, DEMO_WEBHOOK_SECRET=WEBHOOK_SECRET)
    text = policy.read_text().splitlines()
    line = next(i for i, t in enumerate(text, 1) if t.strip() == f"- holds/{CASE}.yaml")
    col = text[line - 1].index("holds/") + 1

    missing = run_cli(["validate", str(policy)], env)
    assert missing.returncode == 78, missing.stdout + missing.stderr
    out = missing.stdout + missing.stderr
    assert f"demo.yaml:{line}:{col}: V023" in out and "does not exist" in out

    hold = write_hold(policy.parent, attempts=[], campaigns=[])
    hold.write_text(hold.read_text().replace("placed_by", "placed"))
    broken = run_cli(["validate", str(policy)], env)
    assert broken.returncode == 78
    out = broken.stdout + broken.stderr
    assert f"demo.yaml:{line}:{col}: V023" in out and "placed_by" in out

    policy.write_text(policy.read_text().replace(f"holds/{CASE}.yaml", "../outside.yaml"))
    (tmp_path / "outside.yaml").write_text(hold.read_text())
    outside = run_cli(["validate", str(policy)], env)
    assert outside.returncode == 78
    assert f"demo.yaml:{line}:{col}: V014" in outside.stdout + outside.stderr


def refused_everywhere(tmp_path: Path, sim: Simulator, body: str, where: str) -> None:
    """validate, test and run each refuse the demo with this hold file, in one line that
    names the hold file and line, and nothing is archived."""
    policy, _ = demo_copy(tmp_path, sim.base_url, sim.webhook_url)
    hold = policy.parent / "holds" / f"{CASE}.yaml"
    hold.parent.mkdir()
    hold.write_text(body)
    env = sim_env(sim, DEMO_WEBHOOK_SECRET=WEBHOOK_SECRET)
    for command, code in ((["validate", str(policy)], 78), (["test", str(policy)], 1),
                          (["run", str(policy), "--state", str(tmp_path / "state")], 78)):
        result = run_cli(command, env)
        out = result.stdout + result.stderr
        assert result.returncode == code, (command, out)
        assert "hold file" in out and f"holds/{CASE}.yaml:{where}" in out, (command, out)
        assert "Traceback" not in out
    assert not sim.ledger(), "nothing archived under a hold file that does not read"


def test_validate_test_and_run_refuse_a_hold_file_with_a_duplicate_key(tmp_path, start_sim):
    # Read leniently, the second `attempts` list would replace the first: att-0 archived.
    sim = start_sim(Faults(), seed=7, campaign_ids=DEMO_CAMPAIGNS, attempts_per_campaign=10)
    held = sorted(sim.eligible_ids(DEMO_CAMPAIGNS[0], DEMO_APPROVED))
    refused_everywhere(tmp_path, sim, f"case: {CASE}\nplaced_by: a@b\n"
                       f"attempts: [{held[0]}]\nattempts: [{held[1]}]\n",
                       "4:1: P005 duplicate key `attempts` (first at line 3)")


def test_validate_test_and_run_refuse_an_impossible_until_day(tmp_path, start_sim):
    sim = start_sim(Faults(), seed=7, campaign_ids=DEMO_CAMPAIGNS, attempts_per_campaign=10)
    refused_everywhere(tmp_path, sim, f"case: {CASE}\nplaced_by: a@b\nuntil: 2027-02-30\n"
                       f"campaigns: [{DEMO_CAMPAIGNS[0]}]\n",
                       "3:8: V023 `until`: 2027-02-30 is not a day: day is out of range")


def test_validate_lists_every_problem_of_a_hold_file(tmp_path, start_sim):
    sim = start_sim(Faults(), seed=7, campaign_ids=DEMO_CAMPAIGNS, attempts_per_campaign=10)
    policy, _ = demo_copy(tmp_path, sim.base_url, sim.webhook_url)
    hold = policy.parent / "holds" / f"{CASE}.yaml"
    hold.parent.mkdir()
    hold.write_text(f"case: {CASE}\nplaced_by: a@b\nuntil: 2027-02-30\ncampaigns: c-1\n"
                    "attempts: [att-1, 7]\n")
    env = sim_env(sim, DEMO_WEBHOOK_SECRET=WEBHOOK_SECRET)
    checked = run_cli(["validate", str(policy)], env)
    assert checked.returncode == 78
    out = checked.stdout + checked.stderr
    for where in ("3:8: V023 `until`", "4:12: V023 `campaigns`", "5:19: V023 `attempts.1`"):
        assert f"holds/{CASE}.yaml:{where}" in out, out
    assert "3 errors in 1 of 1 policy" in out


@pytest.mark.parametrize(("broken", "where"), [
    ("until: 2027-02-30\n", "3:8: V023 `until`: 2027-02-30 is not a day"),
    ("attempts: []\nattempts: []\n", "4:1: P005 duplicate key `attempts` (first at line 3)"),
])
def test_a_hold_file_broken_during_a_run_stops_its_campaigns_and_the_run_is_recorded(
    tmp_path, start_sim, broken, where
):
    """Hold files are read again before every batch: one that no longer reads leaves
    what must not be archived unknown, so no further batch is formed; the run ends
    recorded, exit 1, naming the hold file and its line."""
    # Slow answers and small batches, one in flight: seconds between the first batch and
    # the last, to break the hold file in.
    sim = start_sim(Faults(latency_ms=150), seed=7, campaign_ids=DEMO_CAMPAIGNS,
                    attempts_per_campaign=600)
    policy, campaigns = demo_copy(tmp_path, sim.base_url, sim.webhook_url)
    doc = yaml.safe_load(policy.read_text())
    doc["batch"]["max_items"] = 20
    doc["connection"]["max_in_flight"] = 1
    policy.write_text(yaml.safe_dump(doc, sort_keys=False))
    hold = write_hold(policy.parent, attempts=[], campaigns=[])
    state, report = tmp_path / "state", tmp_path / "report.json"
    args = [sys.executable, "-m", "archiver", "run", str(policy), "--state", str(state),
            "--report", str(report)]
    proc = subprocess.Popen(args, env=sim_env(sim, DEMO_WEBHOOK_SECRET=WEBHOOK_SECRET),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not sim.ledger():
        assert time.monotonic() < deadline and proc.poll() is None, "nothing was ever archived"
        time.sleep(0.02)
    # Replaced whole, as a checkout would: a refresh never reads it half written.
    edited = hold.with_suffix(".new")
    edited.write_text(f"case: {CASE}\nplaced_by: legal@example.com\n{broken}")
    os.replace(edited, hold)
    at_break = len(sim.ledger())
    stdout, stderr = proc.communicate(timeout=120)
    out = stdout + stderr

    assert proc.returncode == 1, out[-3000:]
    assert "Traceback" not in out
    named = f"hold file holds/{CASE}.yaml:{where}"
    assert any(named in line and "failed" in line for line in stderr.splitlines()), out[-3000:]
    # At most the batch each campaign had in flight went out after the file broke.
    eligible = set().union(*(sim.eligible_ids(c, DEMO_APPROVED) for c in campaigns))
    assert len(sim.ledger()) <= at_break + len(campaigns) * 20 < len(eligible)
    recorded = json.loads(report.read_text())
    assert recorded["exit_code"] == 1
    failed = [c for c in recorded["campaigns"] if c["status"] == "failed"]
    assert failed and all(named in c["reason"] for c in failed)
    assert recorded["totals"]["failed"] > 0
    runs = json.loads(run_cli(["runs", "--state", str(state), "--format", "json"],
                              sim_env(sim)).stdout)
    assert [(r["id"], r["status"], r["exit_code"]) for r in runs] == [
        (recorded["run_id"], "failed", 1)]

"""``run --max-batches N``: a cautious run stops cleanly after N archive batches, leaves
the rest pending, and the next run goes on exactly where it stopped."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema

from archiver.simulator import Faults
from tests.e2e.test_crash_recovery import CAMPAIGNS, check_exactly_once, crash_policy
from tests.support import APPROVED, REPO, policy_dict, run_cli, sim_env, write_policy

STATES = ("archived", "skipped", "quarantined", "failed", "held", "pending")
LAST_SUCCESS = "archiver_last_success_timestamp_seconds"
STOPPED_LINE = "stopped after 1 batch (--max-batches 1); run again to continue"


def checked_report(path: Path) -> dict[str, Any]:
    """The report, valid against its schema, every count adding up to what was listed."""
    report: dict[str, Any] = json.loads(path.read_text())
    schema = json.loads((REPO / "schemas" / "run-report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(report)
    for counts in (report["totals"], *report["campaigns"]):
        assert counts["listed"] == sum(counts[s] for s in STATES), counts
    return report


def archive_keys(sim) -> list[str]:
    """The idempotency key of every archive call the simulator accepted, in order."""
    return [r["headers"]["Idempotency-Key"] for r in sim.requests()
            if r["kind"] == "archive" and r["status"] == 200]


def open_batches(state: Path) -> int:
    with sqlite3.connect(state / "state.db") as db:
        return int(db.execute("SELECT count(*) FROM batches WHERE status = 'prepared'").fetchone()[0])


def test_one_batch_then_a_full_run_ends_as_one_uninterrupted_run(tmp_path, start_sim):
    config = {"campaign_ids": CAMPAIGNS, "attempts_per_campaign": 300, "seed": 21}
    sim = start_sim(**config)
    policy = crash_policy(tmp_path, sim.webhook_url)
    state = tmp_path / "state"
    env = sim_env(sim)
    args = ["run", str(policy), "--state", str(state)]

    metrics = tmp_path / "archiver.prom"
    first = run_cli([*args, "--max-batches", "1", "--report", str(tmp_path / "r1.json"),
                     "--metrics", str(metrics)], env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert STOPPED_LINE in first.stdout
    # Why attempts are pending is the campaign's stopped line; never "N pending: " with
    # nothing after it.
    assert not re.search(r": \d+ pending:", first.stdout), first.stdout
    assert re.search(r": stopped: stopped at --max-batches 1: \d+ attempt\(s\) left pending",
                     first.stdout), first.stdout
    assert LAST_SUCCESS not in metrics.read_text(), "attempts left pending: no success yet"
    report = checked_report(tmp_path / "r1.json")
    assert report["batch_limit"] == {"max_batches": 1, "sent": 1, "stopped": True}
    # The metrics' last-run gauge holds every listed attempt, the pending ones too.
    from prometheus_client.parser import text_string_to_metric_families

    gauge = [s for f in text_string_to_metric_families(metrics.read_text())
             if f.name == "archiver_run_attempts" for s in f.samples]
    for campaign in report["campaigns"]:
        mine = {s.labels["state"]: s.value for s in gauge if s.labels["campaign"] == campaign["id"]}
        assert mine == {state: campaign[state] for state in STATES}, campaign["id"]
    assert len(archive_keys(sim)) == 1, "exactly one batch went"
    assert len(sim.ledger()) == report["totals"]["archived"] == 40  # batch.max_items
    assert report["totals"]["failed"] == 0 and report["totals"]["pending"] > 0
    statuses = sorted(c["status"] for c in report["campaigns"])
    assert statuses == ["stopped", "stopped"], "one stopped after its batch, one before any"
    assert all("left pending for the next run" in c["reason"] for c in report["campaigns"])
    assert open_batches(state) == 0, "no batch formed and left unsent"

    second = run_cli([*args, "--report", str(tmp_path / "r2.json"), "--metrics", str(metrics)],
                     env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "stopped after" not in second.stdout
    assert LAST_SUCCESS in metrics.read_text()
    final = checked_report(tmp_path / "r2.json")
    assert "batch_limit" not in final and final["totals"]["pending"] == 0
    assert {c["status"] for c in final["campaigns"]} == {"done"}
    check_exactly_once(sim, tmp_path, state, env)

    # The same data archived by one run without the limit: the same ledger, and the
    # same batches (same compositions, so the same keys): the second run went on
    # exactly where the first stopped.
    alone = start_sim(**config)
    folder = tmp_path / "alone"
    uninterrupted = run_cli(["run", str(crash_policy(folder, alone.webhook_url)), "--state",
                             str(folder / "state")], sim_env(alone))
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    assert sim.ledger() == alone.ledger()
    assert sorted(archive_keys(sim)) == sorted(archive_keys(alone))


def test_a_campaign_paused_for_the_run_is_resumed_when_it_stops_at_the_limit(tmp_path, start_sim):
    campaign = CAMPAIGNS[0]
    sim = start_sim(Faults(active_campaigns=[campaign]), campaign_ids=[campaign],
                    attempts_per_campaign=300, seed=5)
    doc = policy_dict([campaign])
    doc["batch"]["max_items"] = 40
    policy = write_policy(tmp_path / "policy.yaml", doc)
    report_path = tmp_path / "report.json"
    result = run_cli(["run", str(policy), "--state", str(tmp_path / "state"), "--max-batches",
                      "1", "--report", str(report_path)], sim_env(sim))
    assert result.returncode == 0, result.stderr[-3000:]
    assert STOPPED_LINE in result.stdout
    report = checked_report(report_path)
    assert [c["status"] for c in report["campaigns"]] == ["stopped"]
    assert (report["pauses"], report["resumes"]) == (1, 1)
    patches = [r["body"]["status"] for r in sim.requests() if r["method"] == "PATCH"]
    assert patches == ["PAUSED", "ACTIVE"]
    assert sim.campaigns()[campaign]["status"] == "ACTIVE", "dialing again after the stop"
    assert len(sim.ledger()) == 40


def test_a_folder_stops_at_the_limit_across_its_policies(tmp_path, start_sim):
    sim = start_sim(campaign_ids=CAMPAIGNS, attempts_per_campaign=200, seed=8)
    folder = tmp_path / "policies"
    for name, campaign in zip(("first", "second"), CAMPAIGNS, strict=True):
        doc = policy_dict([campaign], name=name)
        doc["batch"]["max_items"] = 30
        write_policy(folder / f"{name}.yaml", doc)
    args = ["run", str(folder), "--state", str(tmp_path / "state"), "--quiet"]
    env = sim_env(sim)

    limited = run_cli([*args, "--max-batches", "2", "--report", str(tmp_path / "r.json")], env)
    assert limited.returncode == 0, limited.stderr[-3000:]
    first = checked_report(tmp_path / "r.first.json")
    assert first["batch_limit"] == {"max_batches": 2, "sent": 2, "stopped": True}
    assert not (tmp_path / "r.second.json").exists(), "the second policy was not started"
    assert "all 1 of 2 policies:" in limited.stdout
    assert ("stopped after 2 batches in all (--max-batches 2, 1 policy not started); "
            "run again to continue") in limited.stdout
    assert len(archive_keys(sim)) == 2

    full = run_cli(args, env)
    assert full.returncode == 0, full.stderr[-3000:]
    assert "stopped after" not in full.stdout
    ledger = sim.ledger()
    eligible = set().union(*(sim.eligible_ids(c, set(APPROVED)) for c in CAMPAIGNS))
    assert set(ledger) == eligible and set(ledger.values()) == {1}


def test_an_open_batch_sent_again_counts_against_the_limit(tmp_path, start_sim):
    campaign = CAMPAIGNS[0]  # one campaign: no other one to take the one batch first
    sim = start_sim(campaign_ids=[campaign], attempts_per_campaign=300, seed=21)
    policy = crash_policy(tmp_path, sim.webhook_url, [campaign])
    state = tmp_path / "state"
    env = sim_env(sim)
    args = ["run", str(policy), "--state", str(state)]
    # Killed once its first batch was formed, before it was sent: an open batch.
    crashed = run_cli(args, {**env, "ARCHIVER_FAILPOINT": "batch_prepared:1"})
    assert crashed.returncode == -9, crashed.stderr[-2000:]
    assert open_batches(state) == 1 and archive_keys(sim) == []

    limited = run_cli([*args, "--max-batches", "1", "--report", str(tmp_path / "r.json")], env)
    assert limited.returncode == 0, limited.stderr[-3000:]
    assert checked_report(tmp_path / "r.json")["batch_limit"]["sent"] == 1
    assert len(archive_keys(sim)) == 1, "the open batch was the one batch sent"
    assert open_batches(state) == 0

    assert run_cli(args, env).returncode == 0
    ledger = sim.ledger()
    assert set(ledger) == sim.eligible_ids(campaign, set(APPROVED))
    assert set(ledger.values()) == {1}, "nothing archived twice"


def two_policies(folder: Path, max_items: int) -> None:
    """Policies `first` and `second`, one campaign each, in folders of their own (so each
    has its own default state folder beside it)."""
    for name, campaign in zip(("first", "second"), CAMPAIGNS, strict=True):
        doc = policy_dict([campaign], name=name)
        doc["batch"]["max_items"] = max_items
        write_policy(folder / name / f"{name}.yaml", doc)


def target_host(sim) -> str:
    """host:port of the simulator, as a report's target names it."""
    return urlsplit(sim.base_url).netloc


def test_a_policy_not_started_at_the_limit_keeps_no_earlier_report(tmp_path, start_sim):
    """The report path of a policy the limit left unstarted held an earlier command's
    report, read after the run as this one's: it is removed (the state store keeps it)."""
    folder = tmp_path / "policies"
    state = tmp_path / "state"
    two_policies(folder, 30)
    reports = tmp_path / "reports"
    args = ["run", str(folder), "--state", str(state), "--quiet", "--report",
            str(reports / "r.json")]
    earlier_sim = start_sim(campaign_ids=CAMPAIGNS, attempts_per_campaign=200, seed=8)
    earlier = run_cli(args, sim_env(earlier_sim))
    assert earlier.returncode == 0, earlier.stderr[-3000:]
    stale = checked_report(reports / "r.second.json")["run_id"]
    before = checked_report(reports / "r.first.json")["run_id"]

    # The same folder against a fresh tenant with its own state: the limit is reached in
    # the first policy, and the second is not started.
    sim = start_sim(campaign_ids=CAMPAIGNS, attempts_per_campaign=200, seed=9)
    fresh = tmp_path / "fresh-state"
    limited_args = [*args[:3], str(fresh), *args[4:], "--max-batches", "2"]
    limited = run_cli(limited_args, sim_env(sim))
    assert limited.returncode == 0, limited.stderr[-3000:]
    assert ("stopped after 2 batches in all (--max-batches 2, 1 policy not started); "
            "run again to continue") in limited.stdout
    first = checked_report(reports / "r.first.json")
    assert first["run_id"] != before
    assert first["batch_limit"] == {"max_batches": 2, "sent": 2, "stopped": True}
    assert not (reports / "r.second.json").exists(), "an earlier run's report left as this one's"
    assert sorted(p.name for p in reports.iterdir()) == ["r.first.json"]
    assert (f"policy second not started: --max-batches 2 reached: {reports / 'r.second.json'}, "
            "the report of an earlier run, removed") in limited.stderr, limited.stderr
    assert len(archive_keys(sim)) == 2
    # Nothing of it is lost: the earlier run's report is still in its state store.
    shown = run_cli(["runs", "show", stale, "--state", str(state)], sim_env(earlier_sim))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["policy"]["name"] == "second"

    # The next run, without the limit, writes both again.
    full = run_cli([*limited_args[:-2]], sim_env(sim))
    assert full.returncode == 0, full.stderr[-3000:]
    assert checked_report(reports / "r.second.json")["run_id"] != stale
    assert "removed" not in full.stderr


def test_a_policy_refused_at_its_start_keeps_no_earlier_report(tmp_path, start_sim):
    """A folder run whose second policy is refused before it starts (its state folder
    belongs to another target): that policy's earlier report is removed too, not left
    beside the first policy's fresh one."""
    folder = tmp_path / "policies"
    two_policies(folder, 200)
    reports = tmp_path / "reports"
    args = ["run", str(folder), "--quiet", "--report", str(reports / "r.json")]
    earlier = run_cli(args, sim_env(start_sim(campaign_ids=CAMPAIGNS, attempts_per_campaign=20,
                                              seed=3)))
    assert earlier.returncode == 0, earlier.stderr[-3000:]
    assert checked_report(reports / "r.second.json")["policy"]["name"] == "second"

    # Another host: the first policy's state folder made afresh, the second's kept (it
    # belongs to the first host, so the second policy is refused before any request).
    other = start_sim(campaign_ids=CAMPAIGNS, attempts_per_campaign=20, seed=4)
    shutil.rmtree(folder / "first" / ".archiver")
    refused = run_cli(args, sim_env(other))
    assert refused.returncode == 78, refused.stderr[-3000:]
    assert checked_report(reports / "r.first.json")["target"]["host"] == target_host(other)
    assert not (reports / "r.second.json").exists(), "an earlier run's report left as this one's"
    assert "policy second ended without a report" in refused.stderr, refused.stderr


def test_only_a_regular_file_is_removed_as_an_earlier_report(tmp_path):
    """`--report /dev/null` or a named pipe is no report: never removed (nor a folder)."""
    import os

    from archiver.state.files import remove_output

    pipe, folder, report = tmp_path / "pipe", tmp_path / "folder", tmp_path / "r.json"
    os.mkfifo(pipe)
    folder.mkdir()
    report.write_text("{}")
    under_a_file = report / "r.json"  # a part of the path is a file: nothing there
    assert [remove_output(p) for p in (pipe, folder, under_a_file, report, tmp_path / "none")
            ] == [False, False, False, True, False]
    assert pipe.exists() and folder.is_dir() and not report.exists()


def test_a_run_killed_outright_leaves_no_earlier_report_read_as_its_own(tmp_path, start_sim):
    """SIGKILL (the out-of-memory killer, say) gives the command no chance to clean up:
    an earlier run's report, exit code 0, would still be at the path, read by a monitor
    as this run's. It is removed before the first request instead."""
    sim = start_sim(campaign_ids=CAMPAIGNS, attempts_per_campaign=300, seed=22)
    policy = crash_policy(tmp_path, sim.webhook_url)
    report = tmp_path / "report.json"
    args = ["run", str(policy), "--state", str(tmp_path / "state"), "--report", str(report)]
    earlier = run_cli([*args, "--max-batches", "1"], sim_env(sim))
    assert earlier.returncode == 0, earlier.stderr[-3000:]
    assert checked_report(report)["batch_limit"]["stopped"] is True

    killed = run_cli(args, {**sim_env(sim), "ARCHIVER_FAILPOINT": "batch_recorded:1"})
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert not report.exists(), "an earlier run's report left as the killed run's"

    # The next run writes its own, and says nothing of removing one: there was none left.
    rerun = run_cli(args, sim_env(sim))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert checked_report(report)["exit_code"] == 0
    assert "removed" not in rerun.stderr
    check_exactly_once(sim, tmp_path, tmp_path / "state", sim_env(sim))


def test_an_earlier_report_that_cannot_be_removed_stops_the_command_before_any_request(
    tmp_path, start_sim
):
    import subprocess

    import pytest

    sim = start_sim(campaign_ids=CAMPAIGNS, attempts_per_campaign=50, seed=23)
    policy = crash_policy(tmp_path, sim.webhook_url)
    report = tmp_path / "r.json"
    report.write_text("{}")
    # Immutable: not even root may unlink it (a folder's mode would not stop root).
    if subprocess.run(["chattr", "+i", str(report)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    try:
        refused = run_cli(["run", str(policy), "--state", str(tmp_path / "state"),
                           "--report", str(report)], sim_env(sim))
    finally:
        subprocess.run(["chattr", "-i", str(report)], check=True)
    assert refused.returncode == 74, refused.stderr[-3000:]
    assert (f"cannot remove the report of an earlier run {report}: Operation not permitted"
            in refused.stderr), refused.stderr
    assert "(nothing was sent)" in refused.stderr
    assert sim.requests() == []

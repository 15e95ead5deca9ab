"""What a plugin stage returns is checked before anything acts on it, in runs of the real
command against the simulator: a filter's answer must be None or a skip or quarantine
decision of the attempt it was asked about; a transform's must be a decision of the same
attempt, carrying its record as listed, with a retention of whole days in 1..3650. A
stage that answers otherwise fails its campaign with its name, as one that raises does,
and nothing it said is acted on.

Ground truth is the simulator's (what it archived, every archive body it was sent), the
state store's rows, the run report and the audit log."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from archiver.simulator import DEFAULT_OUTCOME_MIX, Simulator
from archiver.simulator.cxone import CxoneSimConfig, CxoneSimulator
from tests.plugins import misbehaving
from tests.support import APPROVED, REPO, policy_dict, run_cli, sim_env, write_policy
from tests.support_cxone import archive_files, cxone_env, cxone_policy

CAMPAIGN = "3f6c2a10-8d4e-4b7a-9c21-5e0f1a2b3c4d"


def plugin_env(sim: Simulator, tmp_path: Path) -> dict[str, str]:
    site = misbehaving.install(tmp_path / "site")
    return sim_env(sim, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]))


def policy(tmp_path: Path, *, filters: tuple[dict[str, Any], ...] = (),
           first: tuple[dict[str, Any], ...] = (),
           transforms: tuple[dict[str, Any], ...] = ()) -> Path:
    """The suite's policy; ``first`` goes before its filters, ``filters`` after them."""
    doc = policy_dict([CAMPAIGN])
    doc["filters"] = [*first, *doc["filters"], *filters]
    doc["transforms"] = [*doc["transforms"], *transforms]
    doc["sinks"] = [{"type": "audit_log", "path": "audit.jsonl"}]
    return write_policy(tmp_path / "policy.yaml", doc)


def stage(kind: str, mode: str, every: int = 1) -> dict[str, Any]:
    return {"type": f"misbehaving_{kind}", "options": {"mode": mode, "every": every}}


def archive_items(sim: Simulator) -> list[dict[str, Any]]:
    return [item for r in sim.requests() if r["kind"] == "archive" for item in r["body"]["items"]]


def check_ground_truth(sim: Simulator, tmp_path: Path, report: dict[str, Any]) -> None:
    """Nothing archived or claimed that the run did not check; every attempt the run
    counts as listed has its one state in the store (none left pending), the archived
    ones exactly those the simulator archived; the run is recorded failed and its audit
    log matches the store."""
    anonymized = sim.eligible_ids(CAMPAIGN, set(DEFAULT_OUTCOME_MIX))  # well formed too
    assert set(sim.ledger()) <= anonymized
    claimed = {i["attemptId"] for i in archive_items(sim) if i["statusMatrix"]["anonymized"]}
    assert claimed <= anonymized, sorted(claimed - anonymized)[:5]
    with sqlite3.connect(tmp_path / "state" / "state.db") as db:
        rows = db.execute("SELECT attempt_id, state FROM attempts").fetchall()
    assert run_statuses(tmp_path / "state") == ["failed"]
    assert len(rows) == report["totals"]["listed"]
    assert {a for a, state in rows if state == "archived"} == set(sim.ledger())
    assert "pending" not in {state for _, state in rows}
    verified = run_cli(["audit", "verify", str(tmp_path / "audit.jsonl"),
                        "--state", str(tmp_path / "state")], {})
    assert verified.returncode == 0, verified.stdout + verified.stderr


def archived_none_pending(state: Path) -> set[str]:
    """The attempts the store records archived; none may be left pending."""
    with sqlite3.connect(state / "state.db") as db:
        archived = {a for (a,) in db.execute(
            "SELECT attempt_id FROM attempts WHERE state = 'archived'")}
        assert db.execute("SELECT count(*) FROM attempts WHERE state = 'pending'"
                          ).fetchone() == (0,)
    return archived


def run_statuses(state: Path) -> list[str]:
    """How each run of the state folder ended, oldest first."""
    with sqlite3.connect(state / "state.db") as db:
        return [s for (s,) in db.execute("SELECT status FROM runs ORDER BY started_at")]


def run_failing(sim: Simulator, tmp_path: Path, path: Path) -> tuple[str, dict[str, Any]]:
    report_file = tmp_path / "report.json"
    ran = run_cli(["run", str(path), "--state", str(tmp_path / "state"),
                   "--report", str(report_file)], plugin_env(sim, tmp_path))
    out = ran.stdout + ran.stderr
    assert ran.returncode == 1, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    report = json.loads(report_file.read_text())
    [campaign] = report["campaigns"]
    assert campaign["status"] == "failed", campaign
    return campaign["reason"], report


@pytest.mark.parametrize(("mode", "said"), [
    ("text", "returned a str for attempt att-"),
    ("other_attempt", "with a decision about attempt 'att-"),
    ("hold", "decided hold for attempt att-"),
    ("reason_none", "a reason that is None, not text"),
])
def test_a_filter_answer_that_is_not_a_skip_or_quarantine_of_its_attempt_fails_its_campaign(
    tmp_path: Path, start_sim: Any, mode: str, said: str
) -> None:
    """Before: a text or an unknown kind was a traceback, the run left `running` and no
    attempt recorded; a decision about another id recorded that id (an attempt of nowhere)
    and left the one asked about with no state, exit 0; a filter's `hold` was recorded
    as a legal hold no hold file made; a reason that was None was reported as an error of
    the state store (NOT NULL constraint failed: attempts.reason), the run left `running`."""
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=600, seed=7)
    reason, report = run_failing(sim, tmp_path, policy(tmp_path, filters=(stage("filter", mode, 7),)))
    assert reason.startswith("filter plugin 'misbehaving_filter' ") and said in reason, reason
    assert sim.ledger() == {}
    check_ground_truth(sim, tmp_path, report)


def test_a_filter_cannot_let_an_attempt_through_as_anonymized(tmp_path: Path, start_sim: Any) -> None:
    """Before: a filter ahead of `anonymized` that answered `archive`, with the record
    flagged anonymized, sent every attempt in archive bodies claiming anonymized: true,
    the unanonymized ones included, and past the outcome filter (the simulator refused
    those bodies; a server that trusts them would have archived them)."""
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=600, seed=7)
    reason, report = run_failing(sim, tmp_path, policy(tmp_path, first=(stage("filter", "archive"),)))
    assert reason.startswith("filter plugin 'misbehaving_filter' decided archive for attempt att-")
    assert archive_items(sim) == []
    check_ground_truth(sim, tmp_path, report)


@pytest.mark.parametrize(("mode", "said"), [
    ("none", "returned None for attempt att-"),
    ("other_attempt", "with a decision about attempt 'att-"),
    ("other_contact", "changed the listed record of attempt att-"),
    ("retention_negative", "gave attempt att-"),
    ("retention_bool", "gave attempt att-"),
])
def test_a_transform_answer_that_is_not_a_sound_decision_of_its_attempt_fails_its_campaign(
    tmp_path: Path, start_sim: Any, mode: str, said: str
) -> None:
    """Before: None was a traceback with no attempt recorded; another id left the attempt
    with no state; another contact id, or a retention of -5 days, went out in archive
    bodies (the simulator refused them, so the error named the API, not the plugin); a
    retention of True archived attempts for 1 day."""
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=600, seed=7)
    reason, report = run_failing(
        sim, tmp_path, policy(tmp_path, transforms=(stage("transform", mode, 7),)))
    assert reason.startswith("transform plugin 'misbehaving_transform' ") and said in reason, reason
    assert archive_items(sim) == []
    check_ground_truth(sim, tmp_path, report)


def test_a_filter_cannot_change_what_a_retire_acts_on_by_writing_into_the_record(
    tmp_path: Path,
) -> None:
    """Before: a filter ahead of the outcome filter that wrote the externalId of the attempt
    before into each record's handle, and passed it, made a retire of 94 attempts remove
    9 prospects none of whose attempts was archived (the outcome filter skipped them) and
    leave 10 whose attempts were recorded archived on the calling list; exit 0. A record's
    handle is read-only now: the write fails the campaign, naming the plugin."""
    with CxoneSimulator(CxoneSimConfig(campaigns=1, call_lists=1, prospects_per_list=60)) as sim:
        path = cxone_policy(tmp_path, sim, sim.campaign_ids, action="retire",
                            source={"type": "call_list_attempts", "call_list": "4412"},
                            approved=["Survey Taken", "No Answer"])
        doc = yaml.safe_load(path.read_text())
        doc["filters"].insert(0, stage("filter", "handle_swap"))
        path.write_text(yaml.safe_dump(doc))
        site = misbehaving.install(tmp_path / "site")
        ran = run_cli(["run", str(path), "--state", str(tmp_path / "state")],
                      cxone_env(sim, PYTHONPATH=os.pathsep.join([str(site), str(REPO)])))
        out = ran.stdout + ran.stderr
        assert ran.returncode == 1 and "Traceback" not in out, out[-3000:]
        assert "filter plugin 'misbehaving_filter' failed on attempt " in out, out[-3000:]
        assert "TypeError" in out
        assert sim.ledger() == {"requested": {}, "removed": {}}


def test_a_sink_cannot_change_what_the_audit_log_or_the_archive_files_say(
    tmp_path: Path, start_sim: Any
) -> None:
    """Before: a plugin sink listed before the audit log and the file sink that wrote into
    the event it rendered and the records it was handed made every batch's audit line
    name one attempt, `att-forged`, and every line of the archive files say contact
    `c-forged` and anonymized: true, for 395 archived attempts; `audit verify` found the
    log intact and matching the store. Each plugin sink now gets a copy of its own."""
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=600, seed=7)
    doc = policy_dict([CAMPAIGN])
    doc["sinks"] = [{"type": misbehaving.SINK, "options": {"mode": "forge"}},
                    {"type": "audit_log", "path": "audit.jsonl"},
                    {"type": "file", "path": "archive/{campaign}/"}]
    path = write_policy(tmp_path / "policy.yaml", doc)
    ran = run_cli(["run", str(path), "--state", str(tmp_path / "state")], plugin_env(sim, tmp_path))
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-3000:]
    archived = set(sim.ledger())
    assert archived == sim.eligible_ids(CAMPAIGN, set(APPROVED))
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").open()]
    in_log = [a for line in lines if line["event"] == "batch_archived" for a in line["attempt_ids"]]
    assert sorted(in_log) == sorted(archived)
    with sqlite3.connect(tmp_path / "state" / "state.db") as db:
        stored = {a: (c, bool(f)) for a, c, f in db.execute(
            "SELECT attempt_id, contact_id, anonymized FROM attempts WHERE state = 'archived'")}
    files = archive_files(tmp_path / "archive")
    in_files = {r["id"]: (r["contact_id"], r["anonymized"]) for rs in files.values() for r in rs}
    assert in_files == stored and len(stored) == len(archived)


@pytest.mark.parametrize(("mode", "said"), [
    ("writer_none", "it returned None, not a mapping"),
    ("huge_account", "it returned an account of what it wrote of 1,048,588 characters as "
                     "JSON, past the output bound of 1,048,576 characters (1 MiB)"),
])
def test_a_writer_answering_none_fails_its_campaign_and_the_next_run_records_the_batch(
    tmp_path: Path, start_sim: Any, mode: str, said: str
) -> None:
    """Before: a plugin sink whose write_batch answered None was a traceback once the API
    had archived the batch: all 395 archived attempts left `pending` in the store, the
    run left `running`, no batch line in the audit log; every later run the same. One
    that answered an account longer, as JSON, than a template may render was taken: the
    batch was recorded, but its audit line (which carries the account) could not be
    rendered under the output bound, so the event was kept unrendered and every later
    run failed on it, the writer fixed or not."""
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=600, seed=7)
    doc = policy_dict([CAMPAIGN])
    doc["sinks"] = [{"type": "audit_log", "path": "audit.jsonl"},
                    {"type": misbehaving.SINK,
                     "options": {"mode": mode, "fixed": str(tmp_path / "fixed")}}]
    path = write_policy(tmp_path / "policy.yaml", doc)
    env, state = plugin_env(sim, tmp_path), tmp_path / "state"
    ran = run_cli(["run", str(path), "--state", str(state)], env)
    out = ran.stdout + ran.stderr
    assert ran.returncode == 1 and "Traceback" not in out, out[-3000:]
    assert f"sink plugin '{misbehaving.SINK}' failed in write_batch: {said}" in out, out[-3000:]
    with sqlite3.connect(state / "state.db") as db:
        states = dict(db.execute("SELECT state, count(*) FROM attempts GROUP BY state"))
    assert run_statuses(state) == ["failed"]
    assert "pending" not in states and "archived" not in states

    (tmp_path / "fixed").touch()
    again = run_cli(["run", str(path), "--state", str(state)], env)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    archived = set(sim.ledger())
    assert archived == sim.eligible_ids(CAMPAIGN, set(APPROVED))
    assert set(sim.ledger().values()) == {1}
    with sqlite3.connect(state / "state.db") as db:
        stored = {a for (a,) in db.execute("SELECT attempt_id FROM attempts"
                                           " WHERE state = 'archived'")}
    assert stored == archived
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").open()]
    in_log = [a for line in lines if line["event"] == "batch_archived" for a in line["attempt_ids"]]
    assert sorted(in_log) == sorted(archived)
    verified = run_cli(["audit", "verify", str(tmp_path / "audit.jsonl"), "--state", str(state)], {})
    assert verified.returncode == 0, verified.stdout + verified.stderr


def sink_events(state: Path) -> list[tuple[str, str, int]]:
    """The misbehaving sink's events in the outbox, in order: id, status, body length."""
    with sqlite3.connect(state / "state.db") as db:
        return db.execute("SELECT event_id, status, length(body) FROM outbox WHERE sink LIKE ?"
                          " ORDER BY seq", (f"{misbehaving.SINK}:%",)).fetchall()


@pytest.mark.parametrize(("mode", "said"), [
    ("huge_body", "it returned a body of 1,048,577 characters, past the output bound of "
                  "1,048,576 characters (1 MiB) a template's render is held to"),
    ("bytes_body", "it returned a bytes, not text (the event's body)"),
])
def test_a_sink_body_past_the_output_bound_or_not_text_is_kept_unrendered_until_fixed(
    tmp_path: Path, start_sim: Any, mode: str, said: str
) -> None:
    """Before: a plugin sink's body of any size was stored in the outbox and delivered
    (one of 200 MB was); bytes were refused naming the sink's `name`, not the plugin.
    Now either fails the render as a raise there does, naming the plugin, the event kind,
    the size and the bound: the batch is recorded, its event kept unrendered for that
    sink, no further batch sent, and the run ends failed; the next run, the sink fixed,
    renders and delivers it."""
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=600, seed=7)
    log = tmp_path / "delivered.log"
    doc = policy_dict([CAMPAIGN])
    doc["batch"]["max_items"] = 40
    doc["sinks"] = [{"type": "audit_log", "path": "audit.jsonl"},
                    {"type": misbehaving.SINK, "options": {
                        "mode": mode, "fixed": str(tmp_path / "fixed"), "log": str(log)}}]
    path = write_policy(tmp_path / "policy.yaml", doc)
    env, state = plugin_env(sim, tmp_path), tmp_path / "state"
    ran = run_cli(["run", str(path), "--state", str(state)], env)
    out = ran.stdout + ran.stderr
    assert ran.returncode == 1 and "Traceback" not in out, out[-3000:]
    assert (f"sink plugin '{misbehaving.SINK}' failed to shape a batch_archived event: "
            f"{said}") in out, out[-3000:]
    assert run_statuses(state) == ["failed"]
    assert archived_none_pending(state) == set(sim.ledger()) != set()
    assert set(sim.ledger()) < sim.eligible_ids(CAMPAIGN, set(APPROVED)), "no further batch"
    kept = sink_events(state)
    assert "unrendered" in {s for _, s, _ in kept}
    assert max(n for _, _, n in kept) < 10_000, "no oversized body stored"
    delivered = log.read_text().split()
    assert delivered == [e for e, s, _ in kept if s == "delivered"]
    verified = run_cli(["audit", "verify", str(tmp_path / "audit.jsonl"), "--state", str(state)], {})
    assert verified.returncode == 0, verified.stdout + verified.stderr

    (tmp_path / "fixed").touch()
    again = run_cli(["run", str(path), "--state", str(state)], env)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert set(sim.ledger()) == sim.eligible_ids(CAMPAIGN, set(APPROVED))
    assert set(sim.ledger().values()) == {1}
    events = sink_events(state)
    assert {s for _, s, _ in events} == {"delivered"}
    assert max(n for _, _, n in events) < 10_000
    # The kept events are delivered by the next run, each once, in order.
    assert log.read_text().split() == [e for e, _, _ in events]
    verified = run_cli(["audit", "verify", str(tmp_path / "audit.jsonl"), "--state", str(state)], {})
    assert verified.returncode == 0, verified.stdout + verified.stderr

"""A template that fails on one event at run time (output that is not plain JSON) does
not crash the run or lose what the event reports: the batch's outcome is recorded, the
event is kept unrendered, no further batch is sent, and the run ends recorded failed
(exit 1) with one line naming the template and the event kind. A rerun with the
template still broken sends nothing; once it is fixed, the kept event takes its place
(the audit chain has every batch, in order) and the run finishes, archiving nothing
twice."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from archiver.simulator import Faults
from tests.support import APPROVED, policy_dict, read_report, run_cli, sim_env, write_policy

CAMPAIGN = "7e0b1c2d-0000-4000-8000-0000000000f1"
GOOD = '{"event": {{ event|tojson }}{% if event == "batch_archived" %}, "batch": {{ batch.id|tojson }}{% endif %}}\n'


def broken_at_second_batch(value: str) -> str:
    return ('{% if event == "batch_archived" and batch.seq == 2 %}{"a": ' + value +
            '}{% else %}{"event": {{ event|tojson }}}{% endif %}\n')


def write(tmp_path: Path, sink: dict) -> Path:
    doc = policy_dict([CAMPAIGN])
    doc["connection"]["api"] = "campaign-archive"
    doc["batch"]["max_items"] = 40
    doc["sinks"] = [{**sink, "template": "templates/event.json.j2"}]
    return write_policy(tmp_path / "repo" / "policy.yaml", doc)


def set_template(policy: Path, text: str) -> None:
    folder = policy.parent / "templates"
    folder.mkdir(exist_ok=True)
    (folder / "event.json.j2").write_text(text, encoding="utf-8")


def archived_in_store(state: Path) -> set[str]:
    with sqlite3.connect(state / "state.db") as db:
        return {a for (a,) in db.execute("SELECT attempt_id FROM attempts WHERE state = 'archived'")}


def done_batches(state: Path) -> set[str]:
    with sqlite3.connect(state / "state.db") as db:
        return {b for (b,) in db.execute("SELECT id FROM batches WHERE status = 'done'")}


def run_statuses(state: Path) -> list[str]:
    with sqlite3.connect(state / "state.db") as db:
        return [s for (s,) in db.execute("SELECT status FROM runs ORDER BY started_at")]


def archive_calls(sim) -> int:
    return sum(1 for r in sim.requests() if r["method"] == "POST" and "archive" in r["path"])


def failed_on_the_template(result, template: Path, needle: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if needle in line]
    assert lines, result.stderr[-3000:]
    assert str(template) in lines[0] and "batch_archived event" in lines[0]


def test_an_audit_line_that_cannot_be_rendered_stops_the_run_and_loses_nothing(
    tmp_path, start_sim
):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=600, seed=5)
    env = sim_env(sim)
    policy = write(tmp_path, {"type": "audit_log", "path": "audit/audit.jsonl"})
    template = policy.parent / "templates" / "event.json.j2"
    log = policy.parent / "audit" / "audit.jsonl"
    set_template(policy, broken_at_second_batch('"\\ud800"'))
    state, report = tmp_path / "state", tmp_path / "r1.json"
    # validate cannot see it: the sample batch is the first.
    assert run_cli(["validate", str(policy)], env).returncode == 0

    first = run_cli(["run", str(policy), "--state", str(state), "--report", str(report)], env)
    failed_on_the_template(first, template, "lone surrogate")
    assert read_report(report)["exit_code"] == 1
    assert run_statuses(state) == ["failed"]
    # Every archive call made is recorded: the failing batch's outcome included.
    assert set(sim.ledger()) == archived_in_store(state) != set()
    sent = archive_calls(sim)
    eligible = sim.eligible_ids(CAMPAIGN, set(APPROVED))
    assert set(sim.ledger()) < eligible, "no further batch was sent"
    # The log stops before the batch it could not render: the batches recorded before it
    # are there (none, when batch 2 finished first: batches run side by side), no line
    # out of order, and not the failed run's end.
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    events = [line["event"] for line in lines]
    assert events[0] == "run_started" and set(events[1:]) <= {"batch_archived"}
    written = len(lines)

    # Still broken: the kept event still fails; the run sends nothing and fails again.
    again = run_cli(["run", str(policy), "--state", str(state)], env)
    failed_on_the_template(again, template, "lone surrogate")
    assert archive_calls(sim) == sent
    assert run_statuses(state) == ["failed", "failed"]

    set_template(policy, GOOD)
    fixed = run_cli(["run", str(policy), "--state", str(state)], env)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    ledger = sim.ledger()
    assert set(ledger) == eligible
    assert [a for a, n in ledger.items() if n != 1] == [], "no attempt archived twice"
    verify = run_cli(["audit", "verify", str(log), "--state", str(state)], env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    audited = [line["event_id"] for line in lines if line["event"] == "batch_archived"]
    assert len(audited) == len(set(audited)) == len(done_batches(state)), "every batch audited once"
    # The kept line comes next, in its place, rendered by the fixed template; the failed
    # run's end comes before the next run's start.
    assert lines[written]["event"] == "batch_archived" and lines[written]["batch"]
    events = [line["event"] for line in lines]
    assert events.index("run_finished") < events.index("run_started", 1)


def test_a_webhook_body_that_is_not_plain_json_is_never_sent(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=600, seed=6)
    env = sim_env(sim)
    policy = write(tmp_path, {"type": "webhook", "url": sim.webhook_url,
                              "secret_env": "DW_WEBHOOK_SECRET"})
    template = policy.parent / "templates" / "event.json.j2"
    set_template(policy, broken_at_second_batch("NaN"))
    state = tmp_path / "state"

    first = run_cli(["run", str(policy), "--state", str(state)], env)
    failed_on_the_template(first, template, "NaN is not a JSON number")
    assert set(sim.ledger()) == archived_in_store(state) != set()
    for delivery in sim.webhooks():
        json.loads(delivery["payload"], parse_constant=lambda c: pytest_fail(c))
    before = {d["id"] for d in sim.webhooks()}

    set_template(policy, GOOD)
    fixed = run_cli(["run", str(policy), "--state", str(state)], env)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert [a for a, n in sim.ledger().items() if n != 1] == []
    assert set(sim.ledger()) == sim.eligible_ids(CAMPAIGN, set(APPROVED))
    accepted = [d for d in sim.webhooks() if d["status"] == 204 and d["valid"]]
    ids = [d["id"] for d in accepted]
    assert len(ids) == len(set(ids)) == len(done_batches(state)), "one event per batch"
    assert before < set(ids)
    for delivery in accepted:
        json.loads(delivery["payload"], parse_constant=lambda c: pytest_fail(c))


def test_a_run_event_that_cannot_be_rendered_fails_the_run_and_is_kept(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=200, seed=7)
    env = sim_env(sim)
    policy = write(tmp_path, {"type": "audit_log", "path": "audit/audit.jsonl"})
    template = policy.parent / "templates" / "event.json.j2"
    log = policy.parent / "audit" / "audit.jsonl"
    set_template(policy, '{% if event == "run_finished" and counts.archived > 10 %}'
                 '{{ "[" * 5000 }}{{ "]" * 5000 }}{% else %}{"event": {{ event|tojson }}}'
                 '{% endif %}\n')
    state, report = tmp_path / "state", tmp_path / "r.json"
    first = run_cli(["run", str(policy), "--state", str(state), "--report", str(report)], env)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "Traceback" not in first.stderr
    [line] = [x for x in first.stderr.splitlines() if "levels deep" in x]
    assert str(template) in line and "run_finished event" in line
    assert read_report(report)["exit_code"] == 1
    assert run_statuses(state) == ["failed"]
    assert set(sim.ledger()) == sim.eligible_ids(CAMPAIGN, set(APPROVED))

    set_template(policy, GOOD)
    fixed = run_cli(["run", str(policy), "--state", str(state)], env)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    events = [json.loads(x)["event"] for x in log.read_text().splitlines()]
    assert events.count("run_finished") == 2 and events[0] == "run_started"
    assert events.index("run_finished") < events.index("run_started", 1)
    assert [a for a, n in sim.ledger().items() if n != 1] == []


def pytest_fail(constant: str) -> None:
    raise AssertionError(f"the receiver got {constant}: not JSON")


def test_a_file_line_that_cannot_be_rendered_leaves_its_batch_open_and_the_run_ends_after_every_batch(
    tmp_path, start_sim
):
    # The first two batches' records (the lowest ids) cannot be written; the batches after
    # them are in flight, some answers stalled. The campaign must wait for every batch
    # in flight before it ends: no batch recorded after the run's end, and the report
    # counts what the store holds.
    # Some answers stall (the call took effect): a batch whose file failed is recorded
    # while others are still in flight.
    sim = start_sim(Faults(hang_rate=0.5, hang_seconds=1.0), campaign_ids=[CAMPAIGN],
                    attempts_per_campaign=600, seed=5)
    env = sim_env(sim)
    doc = policy_dict([CAMPAIGN])
    doc["connection"]["api"] = "campaign-archive"
    doc["connection"]["max_in_flight"] = 4
    doc["batch"]["max_items"] = 40
    doc["sinks"] = [
        {"type": "file", "path": "archive/{campaign}/", "template": "templates/line.json.j2"},
        {"type": "audit_log", "path": "audit/audit.jsonl"},
    ]
    policy = write_policy(tmp_path / "repo" / "policy.yaml", doc)
    line = policy.parent / "templates" / "line.json.j2"
    line.parent.mkdir(exist_ok=True)
    line.write_text('{% if record.id.startswith("att-") and record.id[-7:]|int < 100 %}{"a": NaN}'
                    '{% else %}{"id": {{ record.id|tojson }}}{% endif %}\n')
    state, report = tmp_path / "state", tmp_path / "r1.json"
    first = run_cli(["run", str(policy), "--state", str(state), "--report", str(report)], env)
    assert first.returncode == 1, first.stderr[-3000:]
    assert "Traceback" not in first.stderr
    assert str(line) in first.stderr
    totals = read_report(report)["totals"]
    assert totals["archived"] == len(archived_in_store(state))
    log = policy.parent / "audit" / "audit.jsonl"
    events = [json.loads(x)["event"] for x in log.read_text().splitlines()]
    assert events[-1] == "run_finished" and events.count("run_finished") == 1, events

    line.write_text('{"id": {{ record.id|tojson }}}\n')
    fixed = run_cli(["run", str(policy), "--state", str(state)], env)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    ledger = sim.ledger()
    assert set(ledger) == sim.eligible_ids(CAMPAIGN, set(APPROVED))
    assert [a for a, n in ledger.items() if n != 1] == [], "no attempt archived twice"
    verify = run_cli(["audit", "verify", str(log), "--state", str(state)], env)
    assert verify.returncode == 0, verify.stdout + verify.stderr

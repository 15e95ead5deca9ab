"""A pending event goes to the sink it was written for, or a run refuses to start.

Sinks are named by where they deliver, so reordering the policy's sinks or inserting
one between runs sends nothing to the wrong endpoint; a run whose policy lost a sink
that still has undelivered events refuses before any request, and `archiver runs
outbox` lists and drops them. Stores that named sinks by position are migrated when
that is unambiguous.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from archiver.simulator import Faults
from tests.support import policy_dict, run_cli, sim_env, write_policy

CAMPAIGN = "3c0b1c2d-0000-4000-8000-0000000000e1"


def write(tmp_path: Path, sinks: list[dict]) -> Path:
    doc = policy_dict([CAMPAIGN])
    doc["batch"]["max_items"] = 50
    doc["sinks"] = sinks
    return write_policy(tmp_path / "p.yaml", doc)


def webhook(url: str) -> dict:
    return {"type": "webhook", "url": url, "secret_env": "DW_WEBHOOK_SECRET"}


AUDIT = {"type": "audit_log", "path": "audit/audit.jsonl"}


def outbox_rows(state: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(state / "state.db") as db:
        return db.execute("SELECT event_id, sink, status FROM outbox ORDER BY seq").fetchall()


def pending_webhook_events(state: Path) -> set[str]:
    return {e for e, sink, status in outbox_rows(state)
            if status == "pending" and sink.startswith("webhook")}


def accepted(sim) -> set[str]:
    return {d["id"] for d in sim.webhooks() if d["status"] == 204}


def api_calls(sim) -> list[dict]:
    return [r for r in sim.requests() if not r["path"].startswith("/_sim/")]


def first_run_with_receiver_down(tmp_path, start_sim, sinks_of):
    """A run whose webhook events all stay pending; returns (sim, state, env, pending)."""
    sim = start_sim(Faults(webhook_status=503), campaign_ids=[CAMPAIGN],
                    attempts_per_campaign=300, seed=71)
    state, env = tmp_path / "state", sim_env(sim)
    first = run_cli(["run", str(write(tmp_path, sinks_of(sim))), "--state", str(state)], env)
    assert first.returncode == 0, first.stderr[-2000:]
    pending = pending_webhook_events(state)
    assert pending
    sim.set_faults(Faults())
    return sim, state, env, pending


def test_reordered_and_inserted_sinks_get_only_their_own_events(tmp_path, start_sim):
    sim, state, env, pending = first_run_with_receiver_down(
        tmp_path, start_sim, lambda sim: [webhook(sim.webhook_url), AUDIT]
    )
    other = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=1)
    # Another webhook first, the audit log before the first webhook.
    policy = write(tmp_path, [webhook(other.webhook_url), AUDIT, webhook(sim.webhook_url)])
    second = run_cli(["run", str(policy), "--state", str(state)], env)
    assert second.returncode == 0, second.stderr[-2000:]
    assert pending <= accepted(sim), "the pending events reached the endpoint they were for"
    assert not accepted(other) & pending, "none went to the sink now in first place"
    assert pending_webhook_events(state) == set()


def test_a_sink_taken_out_with_pending_events_stops_the_run_until_they_are_dropped(
    tmp_path, start_sim
):
    sim, state, env, pending = first_run_with_receiver_down(
        tmp_path, start_sim, lambda sim: [webhook(sim.webhook_url)]
    )
    sink_id = f"webhook:{sim.webhook_url}"
    policy = write(tmp_path, [AUDIT])
    sim.reset_log()
    refused = run_cli(["run", str(policy), "--state", str(state)], env)
    assert refused.returncode == 78, refused.stderr[-2000:]
    [line] = [x for x in refused.stderr.splitlines() if sink_id in x]
    assert line.startswith(f"  {sink_id}: "), "one line per sink, under the message"
    assert "\\n" not in refused.stderr, "a line break shown escaped"
    assert f"{len(pending)} undelivered" in line and "archiver runs outbox" in line
    assert f"--drop {sink_id}" in line
    assert "Traceback" not in refused.stderr
    assert api_calls(sim) == [], "refused before any request"

    listed = run_cli(["runs", "outbox", "--state", str(state), "--format", "json"], env)
    assert listed.returncode == 0, listed.stderr
    [row] = [r for r in json.loads(listed.stdout) if r["sink"] == sink_id]
    assert row["pending"] == len(pending)
    table = run_cli(["runs", "outbox", "--state", str(state)], env)
    assert sink_id in table.stdout

    unknown = run_cli(["runs", "outbox", "--state", str(state), "--drop", "webhook:nowhere"], env)
    assert unknown.returncode == 2 and "no undelivered events" in unknown.stderr
    before = len(outbox_rows(state))
    dropped = run_cli(["runs", "outbox", "--state", str(state), "--drop", sink_id], env)
    assert dropped.returncode == 0, dropped.stderr
    assert f"dropped {len(pending)} undelivered event(s)" in dropped.stdout
    rows = outbox_rows(state)
    assert len(rows) == before, "nothing deleted"
    assert {e for e, s, status in rows if s == sink_id and status == "dropped"} == pending

    again = run_cli(["run", str(policy), "--state", str(state)], env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert not accepted(sim) & pending, "dropped events are never delivered"


def positional(state: Path) -> None:
    """Name the outbox's sinks as stores written before sink identities did."""
    with sqlite3.connect(state / "state.db") as db:
        db.execute("UPDATE outbox SET sink = 'webhook#0' WHERE sink LIKE 'webhook:%'")
        db.execute("UPDATE outbox SET sink = 'audit_log#1' WHERE sink LIKE 'audit_log:%'")


def test_a_store_with_positional_names_is_migrated_when_that_is_unambiguous(tmp_path, start_sim):
    sim, state, env, pending = first_run_with_receiver_down(
        tmp_path, start_sim, lambda sim: [webhook(sim.webhook_url), AUDIT]
    )
    positional(state)
    policy = write(tmp_path, [webhook(sim.webhook_url), AUDIT])
    second = run_cli(["run", str(policy), "--state", str(state)], env)
    assert second.returncode == 0, second.stderr[-2000:]
    assert pending <= accepted(sim)
    sinks = {s for _, s, _ in outbox_rows(state)}
    audit_file = (tmp_path / "audit" / "audit.jsonl").resolve()
    assert sinks == {f"webhook:{sim.webhook_url}", f"audit_log:{audit_file}"}


def test_a_positional_name_that_could_mean_two_sinks_is_refused(tmp_path, start_sim):
    sim, state, env, pending = first_run_with_receiver_down(
        tmp_path, start_sim, lambda sim: [webhook(sim.webhook_url), AUDIT]
    )
    positional(state)
    other = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=1)
    # Two webhooks now: which one was `webhook#0` cannot be known.
    policy = write(tmp_path, [webhook(other.webhook_url), webhook(sim.webhook_url), AUDIT])
    sim.reset_log()
    refused = run_cli(["run", str(policy), "--state", str(state)], env)
    assert refused.returncode == 78, refused.stderr[-2000:]
    assert f"webhook#0: {len(pending)} undelivered" in refused.stderr
    assert "--drop 'webhook#0'" in refused.stderr
    assert api_calls(sim) == [] and accepted(other) == set()


def test_a_sink_a_live_run_delivers_from_a_shared_store_is_not_dropped(postgres_url):
    # A run on another machine delivers the sink (it enqueued a batch's event and will
    # deliver it, or a run after it will): dropping would lose what it just recorded.
    from archiver.state.location import PostgresUrl
    from archiver.state.store import Store

    sink = "webhook:https://dw.example/hook"
    live = Store(PostgresUrl(postgres_url))
    try:
        live.runs.start("r20260101T000000-aaaaaa", "p", "h")
        live.own_sinks([sink])
        live.events.enqueue([("evt-1", sink, "batch_archived", "{}")])
        refused = run_cli(["runs", "outbox", "--state", postgres_url, "--drop", sink], {})
        assert refused.returncode == 75, refused.stdout + refused.stderr
        assert "r20260101T000000-aaaaaa" in refused.stderr, refused.stderr
        assert live.events.by_sink()[0]["pending"] == 1, "nothing dropped"
    finally:
        live.close()
    # Once no run delivers it, what is left is the sink's to give up.
    dropped = run_cli(["runs", "outbox", "--state", postgres_url, "--drop", sink], {})
    assert dropped.returncode == 0, dropped.stderr
    assert "dropped 1 undelivered event(s)" in dropped.stdout

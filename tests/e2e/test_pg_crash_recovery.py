"""Exactly once across crashes with the state store in PostgreSQL: SIGKILL at every
failpoint of the SQLite suite (test_crash_recovery.py), run again with the same
``--state postgresql://...``, nothing archived twice, nothing lost.

A killed run's session ends with it, and with it every lock it held (campaigns,
sinks, its run id): the rerun takes its campaigns back at once, marks it interrupted,
restores the campaign it paused, and reconciles its open batches.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from archiver.simulator import Faults
from tests.support import APPROVED, policy_dict, read_report, run_cli, sim_env, write_policy

CAMPAIGNS = ["aaaaaaaa-0000-4000-8000-0000000000a1", "bbbbbbbb-0000-4000-8000-0000000000b2"]
SIGKILL_EXIT = -9
# The SQLite suite's failpoints, every one (a PostgreSQL run of the set costs ~1 min).
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


def crash_policy(folder: Path, webhook_url: str) -> Path:
    doc = policy_dict(CAMPAIGNS)
    doc["source"]["page_size"] = 50
    doc["batch"]["max_items"] = 40
    doc["connection"]["max_in_flight"] = 3
    doc["sinks"] = [
        {"type": "webhook", "url": webhook_url, "secret_env": "DW_WEBHOOK_SECRET"},
        {"type": "audit_log", "path": "audit/audit.jsonl"},
    ]
    return write_policy(folder / "policy.yaml", doc)


def archived_batches(url: str) -> set[str]:
    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT id FROM batches WHERE status = 'done' AND archived_count > 0"
        ).fetchall()
    return {r[0] for r in rows}


def check_exactly_once(sim, folder: Path, url: str, env: dict[str, str]) -> None:
    ledger = sim.ledger()
    eligible = set().union(*(sim.eligible_ids(c, set(APPROVED)) for c in CAMPAIGNS))
    assert set(ledger) == eligible, "every eligible attempt archived"
    assert [a for a, n in ledger.items() if n != 1] == [], "no attempt archived twice"

    batches = archived_batches(url)
    accepted = [d for d in sim.webhooks() if d["status"] == 204 and d["valid"]]
    ids_by_batch: dict[str, set[str]] = {}
    for d in accepted:
        if d["body"].get("type") == "batch_archived":
            ids_by_batch.setdefault(d["body"]["batch_id"], set()).add(d["id"])
    assert set(ids_by_batch) == batches, "every batch event delivered at least once"
    assert all(len(ids) == 1 for ids in ids_by_batch.values()), "one webhook-id per batch"

    audit = folder / "audit" / "audit.jsonl"
    verify = run_cli(["audit", "verify", str(audit), "--state", url], env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "matches the state store" in verify.stdout
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    event_ids = [line["event_id"] for line in lines]
    assert len(event_ids) == len(set(event_ids)), "no audit line written twice"
    audited = {line["batch_id"] for line in lines if line["event"] == "batch_archived"}
    assert audited == batches, "every batch has its audit line"


@pytest.mark.parametrize(("point", "nth"), CRASH_POINTS, ids=[f"{p}-{n}" for p, n in CRASH_POINTS])
def test_sigkill_then_rerun_on_a_postgresql_store_archives_everything_exactly_once(
    tmp_path, start_sim, postgres_url, point, nth
):
    sim = start_sim(
        Faults(active_campaigns=[CAMPAIGNS[0]]),
        campaign_ids=CAMPAIGNS,
        attempts_per_campaign=300,
        seed=21,
    )
    policy = crash_policy(tmp_path, sim.webhook_url)
    env = sim_env(sim)
    args = ["run", str(policy), "--state", postgres_url, "--report", str(tmp_path / "report.json")]

    crashed = run_cli(args, {**env, "ARCHIVER_FAILPOINT": f"{point}:{nth}"})
    assert crashed.returncode == SIGKILL_EXIT, crashed.stderr[-2000:]

    final = run_cli(args, env)
    assert final.returncode == 0, final.stderr[-3000:]
    report = read_report(tmp_path / "report.json")
    assert {c["status"] for c in report["campaigns"]} == {"done"}, "nothing left busy by the dead run"
    check_exactly_once(sim, tmp_path, postgres_url, env)
    assert sim.campaigns()[CAMPAIGNS[0]]["status"] == "ACTIVE", "paused campaign restored"
    assert not (tmp_path / ".archiver").exists(), "no state folder: the store is the database"
    with psycopg.connect(postgres_url) as db:
        statuses = sorted(r[0] for r in db.execute("SELECT status FROM runs").fetchall())
    assert statuses == ["completed", "interrupted"]

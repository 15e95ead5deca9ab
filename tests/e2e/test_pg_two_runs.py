"""Runs on many machines, one PostgreSQL state store: campaign locks keep them apart.

Each run here is an ``archiver run`` process with a working folder of its own (its own
copy of the policy, its own audit log: another machine, as far as archiver can tell),
against one standalone simulator, with the same ``--state postgresql://...``.

- On the same campaigns, each campaign is processed by one run at a time: the other
  leaves it, reporting it ``busy`` and naming the run that holds it. The simulator's
  ledger shows no attempt archived twice, and no batch was even sent twice (no replay
  of an idempotency key: the locks kept the runs apart, not the API).
- On different campaigns, the runs proceed side by side: both hold their campaigns'
  locks at the same moment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import jsonschema
import psycopg
import requests
import yaml

from archiver.state.locks import lock_key
from tests.support import (
    APPROVED,
    CLIENT_ID,
    CLIENT_SECRET,
    REPO,
    WEBHOOK_SECRET,
    policy_dict,
    read_report,
    start_simulator_process,
    write_policy,
)

CAMPAIGNS = [f"7c0c1c2d-0000-4000-8000-0000000000{n:02d}" for n in range(1, 5)]


def start_simulator(latency_ms: int) -> tuple[subprocess.Popen[str], str]:
    return start_simulator_process(CAMPAIGNS, seed=73, attempts=600, latency_ms=latency_ms)


def machine(folder: Path, base: str, campaigns: list[str]) -> Path:
    """A working folder as another machine would have it: the policy and its audit log."""
    doc = policy_dict(campaigns)
    doc["connection"]["max_in_flight"] = 2
    doc["source"]["page_size"] = 100
    doc["batch"]["max_items"] = 40
    doc["campaigns"] = [{"id": c} for c in campaigns]
    doc["sinks"] = [
        {"type": "webhook", "url": f"{base}/_sim/webhooks", "secret_env": "DW_WEBHOOK_SECRET"},
        {"type": "audit_log", "path": "audit/audit.jsonl"},
    ]
    return write_policy(folder / "policy.yaml", doc)


def start_run(policy: Path, url: str, base: str) -> subprocess.Popen[str]:
    env = {
        "PATH": "/usr/bin:/bin", "CXONE_BASE_URL": base, "CXONE_CLIENT_ID": CLIENT_ID,
        "CXONE_CLIENT_SECRET": CLIENT_SECRET, "DW_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ARCHIVER_STATE_URL": url,  # the store from the environment, as a deployment sets it
        "PYTHONPATH": str(REPO),  # this checkout's archiver, whatever the working folder
    }
    return subprocess.Popen(
        [sys.executable, "-m", "archiver", "run", str(policy), "--report",
         str(policy.parent / "report.json")],
        env=env, cwd=policy.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def sim_get(base: str, path: str, **params: str) -> object:
    return requests.get(f"{base}/_sim/{path}", params=params, timeout=10).json()


def set_latency(base: str, latency_ms: int) -> None:
    changed = requests.post(f"{base}/_sim/faults", json={"latency_ms": latency_ms}, timeout=10)
    assert changed.status_code == 200, changed.text


def campaigns_left_busy(url: str) -> int:
    """How many times a run has left a campaign to the other, so far."""
    with psycopg.connect(url) as db:
        exists = db.execute("SELECT to_regclass('campaigns') IS NOT NULL").fetchone()
        if not (exists and exists[0]):
            return 0
        row = db.execute("SELECT count(*) FROM campaigns WHERE status = 'busy'").fetchone()
    return int(row[0]) if row else 0


def eligible(base: str, campaigns: list[str]) -> dict[str, set[str]]:
    out = {}
    for c in campaigns:
        answer = sim_get(base, "eligible", campaign=c, approved=",".join(APPROVED))
        out[c] = set(answer["ids"])  # type: ignore[index]
    return out


def test_two_runs_on_the_same_campaigns_never_archive_an_attempt_twice(tmp_path, postgres_url):
    # Answers take 300 ms until one run has found a campaign the other holds: a
    # campaign then takes many seconds, so the runs meet however far apart they started.
    # Then answers take 60 ms.
    sim, base = start_simulator(latency_ms=300)
    try:
        policies = [machine(tmp_path / name, base, CAMPAIGNS) for name in ("host-a", "host-b")]
        runs = [start_run(p, postgres_url, base) for p in policies]
        deadline = time.monotonic() + 60
        while not campaigns_left_busy(postgres_url):
            assert all(r.poll() is None for r in runs), "a run ended before the runs met"
            assert time.monotonic() < deadline, "neither run ever found a campaign busy"
            time.sleep(0.05)
        set_latency(base, 60)
        for run in runs:
            _, err = run.communicate(timeout=240)
            assert run.returncode == 0, err[-3000:]
        reports = [read_report(p.parent / "report.json") for p in policies]
        schema = json.loads((REPO / "schemas" / "run-report.schema.json").read_text())
        for report in reports:  # a busy campaign is a status the report schema knows
            jsonschema.Draft202012Validator(schema).validate(report)

        ledger: dict[str, int] = sim_get(base, "ledger")["attempts"]  # type: ignore[index]
        wanted = eligible(base, CAMPAIGNS)
        assert set(ledger) == set().union(*wanted.values()), "every eligible attempt archived"
        assert [a for a, n in ledger.items() if n != 1] == [], "no attempt archived twice"
        stats = sim_get(base, "stats")
        assert stats["replays"] == 0, "no batch was sent by both runs"  # type: ignore[index]

        busy = 0
        for c in CAMPAIGNS:
            rows = [next(x for x in r["campaigns"] if x["id"] == c) for r in reports]
            assert sum(row["archived_in_this_run"] for row in rows) == len(wanted[c]), c
            assert any(row["status"] == "done" for row in rows), rows
            for row, other in zip(rows, reversed(reports), strict=True):
                if row["status"] == "busy":
                    busy += 1
                    assert row["reason"].startswith(f"held by archiver run {other['run_id']} (pid ")
                    assert row["listed"] == 0
        assert busy >= 1, "the runs overlapped: one found a campaign the other held"

        # Both runs deliver the one webhook sink, one at a time: each event once.
        deliveries = Counter(
            d["id"] for d in sim_get(base, "webhooks") if d["status"] == 204)  # type: ignore[union-attr]
        assert deliveries and set(deliveries.values()) == {1}
        # Each host's audit log holds its own run's batches, chained, as the store says.
        audited: list[str] = []
        for p in policies:
            log = p.parent / "audit" / "audit.jsonl"
            check = subprocess.run(
                [sys.executable, "-m", "archiver", "audit", "verify", str(log), "--state",
                 postgres_url], capture_output=True, text=True, cwd=REPO, timeout=60,
            )
            assert check.returncode == 0, check.stdout + check.stderr
            lines = [json.loads(x) for x in log.read_text().splitlines()]
            audited += [x["batch_id"] for x in lines if x["event"] == "batch_archived"]
        with psycopg.connect(postgres_url) as db:
            done = {r[0] for r in db.execute(
                "SELECT id FROM batches WHERE status = 'done' AND archived_count > 0")}
        assert sorted(audited) == sorted(done), "every batch audited once, by the run that sent it"
    finally:
        sim.terminate()
        sim.wait(timeout=30)


def campaign_locks_held(url: str, keys: dict[str, int]) -> dict[str, int]:
    """Campaign -> pid of the session holding its lock, now."""
    wanted = {k & 0xFFFF_FFFF_FFFF_FFFF: c for c, k in keys.items()}
    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT classid::bigint, objid::bigint, pid FROM pg_locks"
            " WHERE locktype = 'advisory' AND objsubid = 1 AND granted"
        ).fetchall()
    held = {}
    for high, low, pid in rows:
        campaign = wanted.get((high << 32) | low)
        if campaign is not None:
            held[campaign] = pid
    return held


def test_runs_on_different_campaigns_proceed_in_parallel(tmp_path, postgres_url):
    # Answers take 300 ms until both runs hold a campaign: each holds one for many
    # seconds, so they overlap however far apart they started. Then answers take 80 ms.
    sim, base = start_simulator(latency_ms=300)
    try:
        mine, theirs = CAMPAIGNS[:2], CAMPAIGNS[2:]
        policies = [machine(tmp_path / "host-a", base, mine),
                    machine(tmp_path / "host-b", base, theirs)]
        runs = [start_run(p, postgres_url, base) for p in policies]
        target = None
        seen_together: dict[str, int] = {}
        deadline = time.monotonic() + 120
        while any(r.poll() is None for r in runs) and time.monotonic() < deadline:
            if target is None:
                with psycopg.connect(postgres_url) as db:
                    exists = db.execute("SELECT to_regclass('store_meta') IS NOT NULL").fetchone()
                    row = db.execute(
                        "SELECT value FROM store_meta WHERE key = 'target'").fetchone() if (
                        exists and exists[0]) else None
                target = row[0] if row else None
            if target is not None:
                keys = {c: lock_key("campaign", target, c) for c in CAMPAIGNS}
                held = campaign_locks_held(postgres_url, keys)
                if any(c in held for c in mine) and any(c in held for c in theirs):
                    seen_together = held
                    break
            time.sleep(0.02)
        set_latency(base, 80)
        for run in runs:
            _, err = run.communicate(timeout=240)
            assert run.returncode == 0, err[-3000:]
        assert seen_together, "both runs held their campaigns' locks at the same moment"
        pids = {seen_together[c] for c in seen_together}
        assert len(pids) == 2, "held by two sessions: the two runs"

        for p in policies:
            report = read_report(p.parent / "report.json")
            assert {c["status"] for c in report["campaigns"]} == {"done"}
        ledger: dict[str, int] = sim_get(base, "ledger")["attempts"]  # type: ignore[index]
        assert set(ledger) == set().union(*eligible(base, CAMPAIGNS).values())
        assert set(ledger.values()) == {1}
    finally:
        sim.terminate()
        sim.wait(timeout=30)


def stop_outside_transactions(proc: subprocess.Popen[str], url: str) -> None:
    """SIGSTOP ``proc`` at a moment its store session has no transaction open (a stopped
    run inside one would hold the store's write lock, and every other run would wait)."""
    with psycopg.connect(url, autocommit=True) as db:
        for _ in range(500):
            os.kill(proc.pid, signal.SIGSTOP)
            while True:
                states = [r[0] for r in db.execute(
                    "SELECT state FROM pg_stat_activity WHERE application_name LIKE"
                    " 'archiver run %' AND pid != pg_backend_pid()")]
                if "active" not in states:
                    break
                time.sleep(0.005)
            if states == ["idle"]:
                return
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.01)
    raise AssertionError("the run's session was never idle")


def campaign_status(url: str, run_id_like: str, campaign: str) -> str | None:
    with psycopg.connect(url) as db:
        exists = db.execute("SELECT to_regclass('campaigns') IS NOT NULL").fetchone()
        if not (exists and exists[0]):
            return None
        row = db.execute(
            "SELECT status FROM campaigns WHERE campaign_id = %s AND run_id LIKE %s",
            (campaign, run_id_like)).fetchone()
    return row[0] if row else None


def test_a_campaign_another_run_lists_again_keeps_its_counts_in_the_first_runs_report(
    tmp_path, postgres_url
):
    # Run A does its campaigns one at a time; once its first is done (its lock let go),
    # run B (another machine) takes that campaign and lists it again: what is still
    # listed (skipped, quarantined) becomes B's latest listing in the store. A's report,
    # written after, still counts every attempt A listed and decided there.
    sim, base = start_simulator(latency_ms=250)
    try:
        first, rest = CAMPAIGNS[0], CAMPAIGNS[1]
        a = machine(tmp_path / "host-a", base, [first, rest])
        b = machine(tmp_path / "host-b", base, [first])
        doc = yaml.safe_load(a.read_text())
        doc["connection"]["max_in_flight"] = 1  # one campaign after the other
        a.write_text(yaml.safe_dump(doc, sort_keys=False))
        run_a = start_run(a, postgres_url, base)
        deadline = time.monotonic() + 120
        while campaign_status(postgres_url, "%", first) != "done":
            assert run_a.poll() is None, run_a.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "run A never finished its first campaign"
            time.sleep(0.02)
        stop_outside_transactions(run_a, postgres_url)
        try:
            assert campaign_status(postgres_url, "%", rest) != "done", "A is still at work"
            set_latency(base, 0)
            run_b = start_run(b, postgres_url, base)
            _, err = run_b.communicate(timeout=120)
            assert run_b.returncode == 0, err[-3000:]
        finally:
            os.kill(run_a.pid, signal.SIGCONT)
        _, err = run_a.communicate(timeout=240)
        assert run_a.returncode == 0, err[-3000:]

        report_a = read_report(a.parent / "report.json")
        report_b = read_report(b.parent / "report.json")
        row_a = next(c for c in report_a["campaigns"] if c["id"] == first)
        row_b = next(c for c in report_b["campaigns"] if c["id"] == first)
        assert row_b["listed"] > 0 and row_b["archived_in_this_run"] == 0, "B listed it again"
        assert row_a["listed"] == 600, "A counts every attempt it listed"
        assert row_a["archived"] == row_a["archived_in_this_run"] == len(
            eligible(base, [first])[first])
        assert (row_a["skipped"], row_a["quarantined"]) == (row_b["skipped"], row_b["quarantined"])
        assert {r["reason"] for r in row_a["reasons"]} == {r["reason"] for r in row_b["reasons"]}
        # The signed run_finished line states the report's counts.
        lines = [json.loads(x) for x in (a.parent / "audit" / "audit.jsonl").read_text().splitlines()]
        finished = next(x for x in lines if x["event"] == "run_finished")
        assert finished["counts"]["listed"] == report_a["totals"]["listed"] == 1200
        assert finished["counts"]["skipped"] == report_a["totals"]["skipped"]
    finally:
        sim.terminate()
        sim.wait(timeout=30)

"""A run whose PostgreSQL session is lost sends no archive call after it.

The session holds the run's campaign locks: once it is gone (the server restarted, the
connection cut, the backend terminated) another run may take the campaign and resend
its open batches, so a batch the run formed but had not sent yet must not go out.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import yaml

from archiver.simulator import Faults, Simulator
from tests.e2e.test_crash_recovery import CAMPAIGNS, check_exactly_once, crash_policy
from tests.support import APPROVED, REPO, run_cli, sim_env, write_policy

LATENCY_MS = 3000


def batches_by_arrival(url: str, ledger: dict[str, int]) -> tuple[set[str], set[str]]:
    """The open batches of the store: (those the server has received, those it has not)."""
    with psycopg.connect(url) as db:
        if not db.execute("SELECT to_regclass('batches') IS NOT NULL").fetchone()[0]:
            return set(), set()
        rows = db.execute(
            "SELECT b.id, a.attempt_id FROM batches b JOIN attempts a ON a.batch_id = b.id"
            " WHERE b.status = 'prepared'").fetchall()
    members: dict[str, set[str]] = {}
    for batch, attempt in rows:
        members.setdefault(batch, set()).add(attempt)
    arrived = {b for b, ids in members.items() if ids & set(ledger)}
    return arrived, set(members) - arrived


def spawn_run(
    tmp_path: Path, sim: Simulator, postgres_url: str, campaigns: list[str],
    retry: dict[str, Any] | None = None, **connection: Any,
) -> tuple[subprocess.Popen[str], list[str], dict[str, str]]:
    """A run of the crash policy (pages of 1,000, ``connection`` and ``retry`` settings
    on top) on the shared store, started: the process, its arguments, its environment."""
    policy = crash_policy(tmp_path, sim.webhook_url, campaigns)
    doc = yaml.safe_load(policy.read_text())
    doc["connection"].update(timeout_seconds=30, **connection)
    doc["source"]["page_size"] = 1000
    doc["retry"].update(retry or {})
    write_policy(policy, doc)
    env = sim_env(sim)
    args = ["run", str(policy), "--state", postgres_url, "--report", str(tmp_path / "r.json")]
    run = subprocess.Popen([sys.executable, "-m", "archiver", *args], env=env, cwd=REPO,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return run, args, env


def end_the_runs_session(postgres_url: str) -> None:
    """Terminate the running archiver's PostgreSQL session (its only one)."""
    with psycopg.connect(postgres_url, autocommit=True) as db:
        ended = db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name LIKE 'archiver run %'").fetchall()
    assert ended == [(True,)], "the run's one session"


def test_batches_formed_before_the_session_was_lost_are_not_sent_after_it(
    tmp_path, start_sim, postgres_url
):
    # Answers take 3 s: both of the run's HTTP workers wait on an archive answer while
    # each campaign has one more batch formed and queued behind them.
    sim = start_sim(Faults(latency_ms=LATENCY_MS), campaign_ids=CAMPAIGNS,
                    attempts_per_campaign=300, seed=21)
    run, args, env = spawn_run(tmp_path, sim, postgres_url, CAMPAIGNS, max_in_flight=2)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert run.poll() is None, run.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the run never had batches waiting to be sent"
            in_flight, queued = batches_by_arrival(postgres_url, sim.ledger())
            if len(in_flight) == 2 and queued:
                break
            time.sleep(0.05)
        end_the_runs_session(postgres_url)
        sim.set_faults(Faults())
        _, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 74, err[-3000:]
    lines = [x for x in err.splitlines() if x.startswith("archiver: error:")]
    assert len(lines) == 1 and "check that the server is up" in lines[0], err[-3000:]

    ledger = sim.ledger()
    sent_after = sorted(b for b in queued if b in batches_by_arrival(postgres_url, ledger)[0])
    assert sent_after == [], "a batch left unsent when the session was lost stays unsent"

    final = run_cli(args, env)
    assert final.returncode == 0, final.stderr[-3000:]
    check_exactly_once(sim, tmp_path, postgres_url, env)


def test_a_call_waiting_out_a_429_when_the_session_is_lost_is_not_sent(
    tmp_path, start_sim, postgres_url
):
    # The server takes a call every 5 s and answers the others 429 with Retry-After: an
    # archive call is waiting out its Retry-After, inside the API client, when the run's
    # session is lost. The wait ends with the run; the call is not sent again.
    sim = start_sim(Faults(rate_limit_rps=0.2), campaign_ids=CAMPAIGNS[:1],
                    attempts_per_campaign=300, seed=21)
    run, args, env = spawn_run(tmp_path, sim, postgres_url, CAMPAIGNS[:1],
                               retry={"max_attempts": 10, "max_backoff_seconds": 30},
                               max_in_flight=1)
    try:
        deadline = time.monotonic() + 120
        while not any(r["kind"] == "archive" and r["status"] == 429 for r in sim.requests()):
            assert run.poll() is None, run.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no archive call was ever answered 429"
            time.sleep(0.05)
        end_the_runs_session(postgres_url)
        lost_at = max(r["seq"] for r in sim.requests())
        sim.set_faults(Faults())  # the next try would be accepted
        _, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 74, err[-3000:]
    after = [r for r in sim.requests() if r["seq"] > lost_at and r["kind"] == "archive"]
    assert after == [], "no archive call went out once the session was lost"

    final = run_cli(args, env)
    assert final.returncode == 0, final.stderr[-3000:]
    assert set(sim.ledger()) == sim.eligible_ids(CAMPAIGNS[0], set(APPROVED))
    assert set(sim.ledger().values()) == {1}

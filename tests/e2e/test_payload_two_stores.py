"""Two state stores on the same campaigns at once: identical batches are identical requests.

Two runs with their own state folders list the same campaigns of one standalone
simulator concurrently. Batches are cut from the sorted eligible ids and keyed by
campaign, ids and request (the same policy and listing: the same bodies) only, so the
API answers the second store's copy of a batch as a replay: no attempt is archived twice, and both stores name the batch's event alike,
so the warehouse keeps one.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import requests

from tests.support import (
    APPROVED,
    CLIENT_ID,
    CLIENT_SECRET,
    WEBHOOK_SECRET,
    policy_dict,
    start_simulator_process,
    write_policy,
)

CAMPAIGNS = ["2b0b1c2d-0000-4000-8000-0000000000d1", "2b0b1c2d-0000-4000-8000-0000000000d2"]


def start_simulator(latency_ms: int) -> tuple[subprocess.Popen[str], str]:
    return start_simulator_process(CAMPAIGNS, seed=61, attempts=1000, latency_ms=latency_ms)


def first_pages_listed(base: str) -> Counter[str]:
    """Campaign -> how many times the start of its listing was asked for."""
    entries = requests.get(f"{base}/_sim/requests", timeout=10).json()
    return Counter(
        e["path"].split("/")[-2] for e in entries
        if e["kind"] == "list" and e["query"].get("offset") == "0"
    )


def batch_events(state: Path) -> dict[str, set[str]]:
    """Batch id -> ids of its webhook events, for the batches that archived something."""
    with sqlite3.connect(state / "state.db") as db:
        done = {r[0] for r in db.execute(
            "SELECT id FROM batches WHERE status = 'done' AND archived_count > 0")}
        events = [r[0] for r in db.execute(
            "SELECT event_id FROM outbox WHERE kind = 'batch_archived' AND sink LIKE 'webhook%'")]
    out: dict[str, set[str]] = {b: set() for b in done}
    for event_id in events:
        out[event_id.removeprefix("evt-").rsplit("-", 1)[0]].add(event_id)
    return out


def test_two_stores_at_once_archive_nothing_twice_and_name_identical_batches_alike(tmp_path):
    # Answers take half a second until both stores have listed both campaigns: a store then
    # needs many seconds for a campaign's batches, so the other lists it before they are
    # all archived, however far apart the two runs started. Then answers take 100 ms.
    sim, base = start_simulator(latency_ms=500)
    try:
        doc = policy_dict(CAMPAIGNS)
        doc["connection"]["max_in_flight"] = 2
        doc["source"]["page_size"] = 1000
        doc["batch"]["max_items"] = 40
        doc["campaigns"] = [{"id": c} for c in CAMPAIGNS]
        doc["sinks"] = [{"type": "webhook", "url": f"{base}/_sim/webhooks",
                         "secret_env": "DW_WEBHOOK_SECRET"}]
        policy = write_policy(tmp_path / "p.yaml", doc)
        env = {
            "PATH": "/usr/bin:/bin", "CXONE_BASE_URL": base, "CXONE_CLIENT_ID": CLIENT_ID,
            "CXONE_CLIENT_SECRET": CLIENT_SECRET, "DW_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        states = [tmp_path / "state-a", tmp_path / "state-b"]
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "archiver", "run", str(policy), "--state", str(s)],
                env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for s in states
        ]
        deadline = time.monotonic() + 60
        while any(first_pages_listed(base)[c] < 2 for c in CAMPAIGNS):
            assert all(run.poll() is None for run in runs), "a run ended before both listed"
            assert time.monotonic() < deadline, "the runs never both listed both campaigns"
            time.sleep(0.05)
        changed = requests.post(f"{base}/_sim/faults", json={"latency_ms": 100}, timeout=10)
        assert changed.status_code == 200, changed.text
        for run in runs:
            _, err = run.communicate(timeout=180)
            assert run.returncode == 0, err[-2000:]

        ledger = requests.get(f"{base}/_sim/ledger", timeout=10).json()["attempts"]
        eligible: set[str] = set()
        for c in CAMPAIGNS:
            eligible |= set(requests.get(
                f"{base}/_sim/eligible", params={"campaign": c, "approved": ",".join(APPROVED)},
                timeout=10,
            ).json()["ids"])
        assert set(ledger) == eligible, "every eligible attempt archived"
        assert [a for a, n in ledger.items() if n != 1] == [], "no attempt archived twice"

        first, second = (batch_events(s) for s in states)
        both = set(first) & set(second)
        assert both, "the runs overlapped: some batches were sent by both stores"
        for batch in both:
            assert first[batch] == second[batch], f"batch {batch}: the same event id in both"
        stats = requests.get(f"{base}/_sim/stats", timeout=10).json()
        assert stats["replays"] == len(both), "each batch of both stores: one real call, one replay"
        assert stats["idempotency_conflicts"] == 0
        webhook_ids = {d["id"] for d in requests.get(f"{base}/_sim/webhooks", timeout=10).json()
                       if d["status"] == 204}
        assert webhook_ids == set().union(*first.values(), *second.values())
    finally:
        sim.terminate()
        sim.wait(timeout=30)

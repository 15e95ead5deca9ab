"""``archiver runs prune`` through the CLI: a real run against the simulator, its history
pruned, and a later run over the same data (a fresh simulator with the same seed, which
lists every attempt again, the archived ones too) archives nothing twice. On a state
folder and on PostgreSQL."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archiver.simulator import Faults, SimConfig, Simulator
from archiver.state.location import PostgresUrl
from archiver.state.lock import RunLock
from archiver.state.store import Store
from tests.state.test_store_prune import FakeClock, a_run
from tests.support import (
    APPROVED,
    CLIENT_ID,
    CLIENT_SECRET,
    WEBHOOK_SECRET,
    policy_dict,
    read_report,
    run_cli,
    sim_env,
    write_policy,
)

CAMPAIGNS = ["5e0b1c2d-0000-4000-8000-0000000000a1", "5e0b1c2d-0000-4000-8000-0000000000a2"]
SIM = {"campaign_ids": CAMPAIGNS, "attempts_per_campaign": 240, "seed": 93}
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "state")
    return str(request.getfixturevalue("postgres_url"))


def removed(output: str) -> dict[str, int]:
    return {t: int(n.replace(",", "")) for t, n in re.findall(r"^  (\w+) +([\d,]+)$", output, re.M)}


def test_a_run_after_a_prune_archives_nothing_twice(tmp_path, start_sim, state, request):
    doc = policy_dict(CAMPAIGNS)
    doc["batch"]["max_items"] = 50
    doc["sinks"] = [{"type": "audit_log", "path": "audit/audit.jsonl"}]
    policy = write_policy(tmp_path / "p.yaml", doc)
    audit = tmp_path / "audit" / "audit.jsonl"
    run = ["run", str(policy), "--state", state]

    # Some items fail: the first run records them failed, and they stay listed.
    first_sim = start_sim(Faults(partial_failure_rate=0.1), **SIM)
    first = run_cli([*run, "--report", str(tmp_path / "r1.json")], sim_env(first_sim))
    assert first.returncode == 1, first.stderr[-3000:]
    totals = read_report(tmp_path / "r1.json")["totals"]
    assert totals["archived"] and totals["failed"] and totals["skipped"]
    first_ledger = first_sim.ledger()
    checked = run_cli(["audit", "verify", str(audit), "--state", state], ENV)
    assert checked.returncode == 0 and "matches the state store" in checked.stdout

    dry = run_cli(["runs", "prune", "--state", state, "--older-than", "0s", "--dry-run"], ENV)
    pruned = run_cli(["runs", "prune", "--state", state, "--older-than", "0s"], ENV)
    assert pruned.returncode == 0, pruned.stderr
    counts = removed(pruned.stdout)
    assert counts == removed(dry.stdout) and set(counts) == {
        "runs", "campaigns", "attempts", "batches", "outbox"}
    assert counts["runs"] == 1 and counts["campaigns"] == 2
    assert counts["attempts"] == totals["failed"] + totals["skipped"] + totals["quarantined"]
    assert counts["outbox"] > 0
    assert "no runs recorded" in run_cli(["runs", "--state", state], ENV).stdout
    again = run_cli(["audit", "verify", str(audit), "--state", state], ENV)
    assert again.stdout == checked.stdout, "the same checkpoint after the prune"

    # The same data again, every attempt listed as if none had been archived, at the same
    # address (the store belongs to its target: that host and port).
    first_sim.stop()
    second_sim = Simulator(SimConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                     webhook_secret=WEBHOOK_SECRET, **SIM), port=first_sim.port)
    second_sim.start()
    request.addfinalizer(second_sim.stop)
    second = run_cli([*run, "--report", str(tmp_path / "r2.json")], sim_env(second_sim))
    assert second.returncode == 0, second.stderr[-3000:]
    second_ledger = second_sim.ledger()
    assert not set(first_ledger) & set(second_ledger), "no attempt archived twice"
    eligible = set().union(*(second_sim.eligible_ids(c, set(APPROVED)) for c in CAMPAIGNS))
    assert set(first_ledger) | set(second_ledger) == eligible
    assert set(second_ledger) and all(n == 1 for n in second_ledger.values())
    report = read_report(tmp_path / "r2.json")
    assert sum(c["archived_in_this_run"] for c in report["campaigns"]) == len(second_ledger)
    assert run_cli(["audit", "verify", str(audit), "--state", state], ENV).returncode == 0


def test_history_written_long_ago_is_pruned_by_the_cli_and_a_dry_run_changes_nothing(
    tmp_path, state
):
    location = PostgresUrl(state) if state.startswith("postgresql") else Path(state)
    past = Store(location, clock=FakeClock(datetime(2020, 5, 1, tzinfo=UTC)))
    try:
        a_run(past, "r-2020", audit=tmp_path / "audit.jsonl")
    finally:
        past.close()
    args = ["runs", "prune", "--state", state, "--older-than", "30d"]

    dry = run_cli([*args, "--dry-run"], ENV)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would remove history finished before ")
    assert "nothing was changed (--dry-run)" in dry.stdout
    assert "r-2020" in run_cli(["runs", "--state", state], ENV).stdout

    done = run_cli([*args, "--format", "json"], ENV)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["dry_run"] is False and answer["removed"] == {
        "runs": 1, "campaigns": 1, "attempts": 4, "batches": 1, "outbox": 1}
    assert answer["removed"] == removed(dry.stdout)
    assert "no runs recorded" in run_cli(["runs", "--state", state], ENV).stdout


@pytest.mark.parametrize(("duration", "words"), [
    ("30 days", "'30 days' is not a duration like 30d, 12h or 1d12h"),
    # Past what a date can hold: once a Python OverflowError.
    ("99999999999d", "'99999999999d' is longer than 36500 days (100 years)"),
    ("36501d", "'36501d' is longer than 36500 days"),
    # Past Python's integer digit limit: once a ValueError traceback.
    ("9" * 5000 + "d", "is longer than 36500 days (100 years)"),
])
def test_a_bad_duration_is_a_usage_error(tmp_path, duration, words):
    result = run_cli(["runs", "prune", "--state", str(tmp_path), "--older-than", duration], ENV)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_a_state_folder_a_run_holds_is_not_pruned(tmp_path):
    store = Store(tmp_path / "state")
    store.close()
    lock = RunLock(tmp_path / "state" / "run.lock")
    lock.acquire()
    try:
        result = run_cli(["runs", "prune", "--state", str(tmp_path / "state"),
                          "--older-than", "1d"], ENV)
    finally:
        lock.release()
    assert result.returncode == 75, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

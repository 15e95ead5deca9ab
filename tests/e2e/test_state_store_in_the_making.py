"""A second run on a state folder whose store the first run is still creating refuses with
exit 75 (the folder is in use), instead of meeting half-made tables and failing."""

from __future__ import annotations

import sqlite3

from archiver.state.lock import RunLock
from tests.support import policy_dict, run_cli, sim_env, write_policy


def test_a_store_being_created_under_the_lock_is_left_alone(tmp_path, start_sim):
    sim = start_sim(campaign_ids=["c1"], attempts_per_campaign=20)
    policy = write_policy(tmp_path / "policy.yaml", policy_dict(["c1"]))
    state = tmp_path / "state"
    lock = RunLock(state / "run.lock")
    lock.acquire()  # another run, which has created one table of its store so far
    try:
        with sqlite3.connect(state / "state.db") as db:
            db.execute("CREATE TABLE watermarks (campaign_id TEXT)")
        result = run_cli(["run", str(policy), "--state", str(state)], sim_env(sim))
    finally:
        lock.release()
    assert result.returncode == 75, result.stderr
    assert "another archiver run holds the state store" in result.stderr
    assert sim.requests() == [], "refused before any request"

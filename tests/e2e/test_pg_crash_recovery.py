"""Exactly once across crashes with the state store in PostgreSQL: SIGKILL at every
failpoint of the SQLite suite (test_crash_recovery.py), run again with the same
``--state postgresql://...``, nothing archived twice, nothing lost.

A killed run's session ends with it, and with it every lock it held (campaigns,
sinks, its run id): the rerun takes its campaigns back at once, marks it interrupted,
restores the campaign it paused, and reconciles its open batches.
"""

from __future__ import annotations

import psycopg
import pytest

from archiver.simulator import Faults

# The SQLite suite's policy, failpoints (every one: a PostgreSQL run of the set costs
# ~1 min) and exactly-once check, here with the store in PostgreSQL.
from tests.e2e.test_crash_recovery import (
    CAMPAIGNS,
    CRASH_POINTS,
    SIGKILL_EXIT,
    check_exactly_once,
    crash_policy,
)
from tests.support import read_report, run_cli, sim_env


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

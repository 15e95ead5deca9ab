"""Why a scale-out run once left two batches unarchived, made to happen on purpose.

Two workers on one tenant each keep their own rate limit, so together they can go over
the tenant's and draw 429s. The simulator's Retry-After is whole seconds (1 for any
shorter wait, as HTTP allows no less), and a policy whose ``retry.max_backoff_seconds``
is below it gives the call up at once (the server asks for a longer wait than the
policy allows): one 429 on an archive call failed its batch and the run exited 1. The
benchmark's policy had the tests' quick retry (0.5 s); it now has a production one.
Here the simulator answers the first archive call 429 (``throttle_next``), so the
mechanism shows every time instead of once in four benchmark runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from archiver.simulator import Faults
from benchmarks import scaleout
from tests.support import APPROVED, policy_dict, read_report, run_cli, sim_env, write_policy

CAMPAIGNS = ["00000001-0000-4000-8000-000000000001", "00000001-0000-4000-8000-000000000002"]


def _one_429_on_an_archive_call(start_sim):
    return start_sim(
        Faults(throttle_next={"archive": 1}), campaign_ids=CAMPAIGNS, attempts_per_campaign=600,
        seed=100, unanonymized_rate=0, malformed_rate=0,
    )


def test_the_benchmark_policy_waits_out_a_retry_after_and_archives_everything(
    tmp_path: Path, start_sim
) -> None:
    sim = _one_429_on_an_archive_call(start_sim)
    policy = scaleout.write_policy(tmp_path, scaleout.Tenant("tenant1", CAMPAIGNS), 20.0)
    report = tmp_path / "report.json"
    result = run_cli(["run", str(policy), "--state", str(tmp_path / "state"), "--report",
                      str(report), "--quiet"], sim_env(sim))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert sim.stats()["rate_limited"] == 1, "the 429 was answered"
    assert read_report(report)["totals"]["failed"] == 0
    eligible = set().union(*(sim.eligible_ids(c, set(APPROVED)) for c in CAMPAIGNS))
    ledger = sim.ledger()
    assert set(ledger) == eligible and set(ledger.values()) == {1}


@pytest.mark.parametrize("max_backoff", [0.5, 0.99])
def test_a_max_backoff_below_one_second_gives_up_an_archive_call_at_its_first_429(
    tmp_path: Path, start_sim, max_backoff: float
) -> None:
    # The mechanism itself: the tests' quick retry, as the benchmark's policy had it.
    sim = _one_429_on_an_archive_call(start_sim)
    doc = policy_dict(CAMPAIGNS)
    doc["retry"]["max_backoff_seconds"] = max_backoff
    doc["retry"]["initial_backoff_seconds"] = 0.05
    policy = write_policy(tmp_path / "policy.yaml", doc)
    report = tmp_path / "report.json"
    result = run_cli(["run", str(policy), "--state", str(tmp_path / "state"), "--report",
                      str(report), "--quiet"], sim_env(sim))
    assert result.returncode == 1
    ran = read_report(report)
    # Batches are cut in chunks of max_items per campaign, the last one shorter; calls run
    # concurrently, so the 429 may fall on any of them: exactly one batch's worth failed.
    size = doc["batch"]["max_items"]
    eligible = {c: sim.eligible_ids(c, set(APPROVED)) for c in CAMPAIGNS}
    sizes = {min(size, len(ids) - start) for ids in eligible.values()
             for start in range(0, len(ids), size)}
    assert len(sizes) > 1, "the data gives batches of more than one size"
    assert ran["totals"]["failed"] in sizes, "one batch failed, no more"
    assert set(sim.ledger()) < set().union(*eligible.values())
    assert len(sim.ledger()) == sum(map(len, eligible.values())) - ran["totals"]["failed"]
    reasons = [r["reason"] for c in ran["campaigns"] for r in c["reasons"] if r["state"] == "failed"]
    assert len(reasons) == 1 and "longer than retry.max_backoff_seconds" in reasons[0], reasons
    assert sim.stats()["rate_limited"] == 1, "given up after that one 429, not retried"

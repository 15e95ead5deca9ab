"""``--report`` and ``--metrics`` name files a run removes or replaces, an earlier report
before the first request: a slip that names a file the run reads or keeps (its policy,
its audit log, its state store) is a usage error before anything is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import policy_dict, run_cli, sim_env, write_policy

CAMPAIGN = "00000000-0000-4000-8000-000000000001"


@pytest.fixture
def setup(tmp_path: Path, start_sim):  # type: ignore[no-untyped-def]
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=40, seed=5)
    doc = policy_dict([CAMPAIGN])
    doc["sinks"] = [{"type": "audit_log", "path": "audit/audit.jsonl"}]
    policy = write_policy(tmp_path / "policy.yaml", doc)
    state = tmp_path / "state"
    first = run_cli(["run", str(policy), "--state", str(state)], sim_env(sim))
    assert first.returncode == 0, first.stderr[-3000:]
    return sim, policy, state, tmp_path / "audit" / "audit.jsonl"


@pytest.mark.parametrize("option", ["--report", "--metrics"])
@pytest.mark.parametrize("which", ["policy", "audit log", "state store", "hard link"])
def test_an_output_naming_a_file_the_run_keeps_is_refused_before_anything_is_touched(
    setup, option: str, which: str
) -> None:
    sim, policy, state, audit = setup
    if which == "hard link":
        target = audit.with_name("same-inode.jsonl")
        target.hardlink_to(audit)
    else:
        target = {"policy": policy, "audit log": audit, "state store": state / "state.db"}[which]
    kept = {p: p.read_bytes() for p in (policy, audit, state / "state.db")}
    calls = len(sim.requests())

    refused = run_cli(["run", str(policy), "--state", str(state), option, str(target)],
                      sim_env(sim))
    assert refused.returncode == 2, refused.stderr[-3000:]
    expected = {
        "policy": "that is a policy this command runs",
        "audit log": "that is the audit log of policy",
        "hard link": "that is the audit log of policy",
        "state store": f"that is inside the state folder {state.resolve()}",
    }[which]
    assert f"{option} {target}: {expected}" in refused.stderr, refused.stderr
    assert {p: p.read_bytes() for p in kept} == kept
    assert len(sim.requests()) == calls


def test_an_output_beside_them_is_written(setup, tmp_path: Path) -> None:
    sim, policy, state, audit = setup
    report = audit.with_name("report.json")  # beside the audit log, not it
    ran = run_cli(["run", str(policy), "--state", str(state), "--report", str(report)],
                  sim_env(sim))
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert report.is_file()

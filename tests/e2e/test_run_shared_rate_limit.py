"""``run FOLDER``: the policies that talk to one API host share one rate limit, so the rate
the first learnt from 429s is where the next starts, and the lowest
``max_requests_per_second`` of them holds for all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from archiver.simulator import Faults
from tests.support import REPO, policy_dict, run_cli, sim_env, write_policy

CAMPAIGNS = ["aaaaaaaa-0000-4000-8000-0000000000a1", "bbbbbbbb-0000-4000-8000-0000000000b2"]


def _policies(folder: Path, ceilings: tuple[float, float]) -> None:
    for name, campaign, ceiling in zip(("first", "second"), CAMPAIGNS, ceilings, strict=True):
        doc = policy_dict([campaign], name=name)
        doc["connection"]["max_requests_per_second"] = ceiling
        write_policy(folder / f"{name}.yaml", doc)


def _report(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(path.read_text())
    schema = json.loads((REPO / "schemas" / "run-report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(report)
    return report


def test_the_second_policy_starts_at_the_rate_the_first_learnt(tmp_path, start_sim):
    # The tenant's rate limit, made to bite where it matters: its first archive call is
    # answered 429 (no Retry-After, as CXone usually sends none), which cuts the rate.
    sim = start_sim(Faults(throttle_next={"archive": 1}, retry_after=False),
                    campaign_ids=CAMPAIGNS, attempts_per_campaign=150, seed=31)
    folder = tmp_path / "policies"
    _policies(folder, (50.0, 80.0))
    env = sim_env(sim)
    result = run_cli(["run", str(folder), "--state", str(tmp_path / "state"), "--report",
                      str(tmp_path / "r.json"), "--quiet"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    first = _report(tmp_path / "r.first.json")["rate_limit"]
    second = _report(tmp_path / "r.second.json")["rate_limit"]
    assert sim.stats()["rate_limited"] == 1, "the first policy's archive call was throttled"

    # One limit for the host: the lower ceiling of the two policies, for both.
    assert first["ceiling"] == second["ceiling"] == 50.0
    assert first["shared"] and second["shared"]
    assert first["start"] == 50.0
    assert first["end"] < 50.0, "the 429 lowered the rate"
    assert second["start"] == first["end"], "the second began where the first left off"

    # Alone, the second policy starts at its own ceiling: nothing carried over.
    alone = run_cli(["run", str(folder / "second.yaml"), "--state", str(tmp_path / "state"),
                     "--report", str(tmp_path / "alone.json"), "--quiet"], env)
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert _report(tmp_path / "alone.json")["rate_limit"] == {
        "ceiling": 80.0, "start": 80.0, "end": 80.0, "shared": False,
    }


def test_policies_on_different_hosts_keep_their_own_limits(tmp_path, start_sim):
    throttled = start_sim(Faults(throttle_next={"archive": 1}, retry_after=False),
                          campaign_ids=[CAMPAIGNS[0]], attempts_per_campaign=150, seed=31)
    other = start_sim(campaign_ids=[CAMPAIGNS[1]], attempts_per_campaign=150, seed=32)
    folder = tmp_path / "policies"
    # Each policy names its own host, and keeps its state beside it (a state folder
    # belongs to one target).
    for name, campaign, sim, ceiling in (("first", CAMPAIGNS[0], throttled, 50.0),
                                         ("second", CAMPAIGNS[1], other, 80.0)):
        doc = policy_dict([campaign], name=name)
        doc["connection"]["max_requests_per_second"] = ceiling
        doc["connection"]["base_url"] = sim.base_url
        write_policy(folder / name / f"{name}.yaml", doc)
    env = sim_env(throttled)
    del env["CXONE_BASE_URL"]
    result = run_cli(["run", str(folder), "--report", str(tmp_path / "r.json"), "--quiet"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    first = _report(tmp_path / "r.first.json")["rate_limit"]
    second = _report(tmp_path / "r.second.json")["rate_limit"]
    assert not first["shared"] and first["end"] < first["ceiling"] == 50.0
    assert second == {"ceiling": 80.0, "start": 80.0, "end": 80.0, "shared": False}

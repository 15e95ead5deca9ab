"""``plan`` says what ``on_active`` would make a run do with a dialing campaign, and pauses
nothing itself: the simulators' request logs show no pause, stop, start or archive call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from archiver.simulator import Faults
from archiver.simulator.cxone import CxoneSimConfig, CxoneSimulator
from tests.support import policy_dict, run_cli, sim_env, write_policy
from tests.support_cxone import cxone_env, cxone_policy

CAMPAIGNS = [
    "5a1f0c3e-0000-4000-8000-00000000000a",
    "6b2e1d4f-0000-4000-8000-00000000000b",
    "7c3f2e50-0000-4000-8000-00000000000c",
]
MODES = ("pause_and_resume", "skip", "fail")


def _plan(policy: Path, env: dict[str, str]) -> tuple[dict[str, Any], str]:
    as_json = run_cli(["plan", str(policy), "--format", "json"], env)
    assert as_json.returncode == 0, as_json.stderr[-3000:]
    as_text = run_cli(["plan", str(policy)], env)
    assert as_text.returncode == 0, as_text.stderr[-3000:]
    return json.loads(as_json.stdout), as_text.stdout


def test_campaign_archive_plan_says_what_a_refusal_would_make_the_run_do(tmp_path, start_sim):
    # Every campaign dials; the campaign archive API says so only by answering an
    # archive call 409, which plan never sends.
    sim = start_sim(Faults(active_campaigns=CAMPAIGNS), campaign_ids=CAMPAIGNS,
                    attempts_per_campaign=200, seed=23)
    doc = policy_dict(CAMPAIGNS)
    doc["campaigns"] = [{"id": c, "on_active": m} for c, m in zip(CAMPAIGNS, MODES, strict=True)]
    plan, text = _plan(write_policy(tmp_path / "policy.yaml", doc), sim_env(sim))

    dialing = {c["id"]: c["dialing"] for c in plan["campaigns"]}
    for campaign, mode in zip(CAMPAIGNS, MODES, strict=True):
        assert dialing[campaign]["on_active"] == mode
        assert dialing[campaign]["dialing"] is None, "not known without an archive call"
        assert dialing[campaign]["run_would"] == mode
        assert "refuses its first batch (409)" in dialing[campaign]["note"]
    assert "run pauses it" not in text  # nothing claimed as seen
    assert "if it does, run would pause it before its first batch and resume it after" in text
    assert "if it does, run would skip it (on_active: skip)" in text
    assert "if it does, run would fail it (on_active: fail)" in text
    assert plan["would_pause"] == []

    requests = sim.requests()
    assert requests and {r["kind"] for r in requests} <= {"token", "list"}
    assert not [r for r in requests if r["method"] == "PATCH"], "no pause request"
    assert sim.ledger() == {}
    assert all(sim.campaigns()[c]["status"] == "ACTIVE" for c in CAMPAIGNS)


RETIRE = {"type": "call_list_attempts", "call_list": "4412", "page_size": 30}


def test_cxone_plan_names_the_running_skills_a_run_would_stop_and_restart(tmp_path):
    # A calling list's policy names one campaign (V025): one policy per campaign here.
    config = CxoneSimConfig(campaigns=3, call_lists=1, prospects_per_list=60)
    with CxoneSimulator(config) as sim:
        first, second, third = sim.campaign_ids
        paths = []
        for cid, change in ((first, {}), (second, {"on_active": "skip"}),
                            (third, {"action": "export"})):  # export changes nothing
            (tmp_path / cid).mkdir()
            path = cxone_policy(tmp_path / cid, sim, [cid], action="retire", source=RETIRE)
            doc = yaml.safe_load(path.read_text())
            doc["campaigns"][0].update(change)
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
            paths.append(path)
        running = {cid: sorted(int(s) for s, v in sim.skills().items() if str(v["campaignId"]) == cid)
                   for cid in sim.campaign_ids}
        sim.app.log.reset()

        (plan, text), (plan2, _), (plan3, _) = (_plan(p, cxone_env(sim)) for p in paths)

        dialing = {c["id"]: c["dialing"] for p in (plan, plan2, plan3) for c in p["campaigns"]}
        assert dialing[first]["dialing"] is True
        assert dialing[first]["what"] == {"skills": running[first]}
        assert dialing[first]["run_would"] == "pause_and_resume"
        assert dialing[second]["dialing"] is True and dialing[second]["run_would"] == "skip"
        assert dialing[third]["run_would"] == "nothing"
        assert "an export changes nothing" in dialing[third]["note"]
        assert plan["would_pause"] == [first]
        assert plan2["would_pause"] == plan3["would_pause"] == []
        skills = ", ".join(str(s) for s in running[first])
        assert (f"dialing: dialing now (skills {skills}): run would pause it before its first "
                "batch and resume it after (on_active: pause_and_resume)") in text
        assert f"Run would pause (and resume after): {first}" in text

        # Read-only: skills were read, none stopped or started.
        calls = [(r["method"], r["path"]) for r in sim.requests()]
        assert any(p.endswith("/skills") for _, p in calls), "plan looked at the skills"
        assert not [c for c in calls if c[0] != "GET" and "/skills/" in c[1]], calls
        assert not [c for c in calls if c[0] == "DELETE"], "no prospect removed"
        assert all(s["isRunning"] and s["stops"] == 0 and s["starts"] == 0
                   for s in sim.skills().values())


def test_a_cxone_campaign_without_an_action_exports_and_no_skill_is_stopped(tmp_path):
    # Export is cxone's default action: it changes nothing on the tenant, so the run
    # neither checks nor pauses the campaign's dialing, whatever on_active says.
    with CxoneSimulator(CxoneSimConfig(campaigns=1)) as sim:
        path = cxone_policy(tmp_path, sim, sim.campaign_ids)
        doc = yaml.safe_load(path.read_text())
        del doc["campaigns"][0]["action"]
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        result = run_cli(["run", str(path), "--state", str(tmp_path / "state")], cxone_env(sim))
        assert result.returncode == 0, result.stderr[-3000:]
        assert all(s["stops"] == 0 and s["isRunning"] for s in sim.skills().values())
        assert not [r for r in sim.requests() if r["method"] == "POST" and "/skills/" in r["path"]]
        plan, _ = _plan(path, cxone_env(sim))
        assert plan["campaigns"][0]["dialing"]["run_would"] == "nothing"

"""dialing/pause/resume through real sockets: the running skills of a campaign are
stopped, and exactly those are started again."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from archiver.backends.cxone.dialing import skill_ids
from archiver.errors import CampaignActive, ServerError, TerminalApiError
from archiver.simulator.cxone import Behaviour
from tests.backends.cxone.conftest import api_requests
from tests.support import slow_limiter


def test_pause_stops_the_running_skills_and_resume_starts_exactly_those(
    start_sim, backend_for
) -> None:
    sim = start_sim(skills_per_campaign=3)
    cid = sim.campaign_ids[0]
    sim.app.skills.set_running(40002, False)  # stopped by someone else: not ours to start
    backend = backend_for(sim)

    dialing = backend.dialing(cid)
    assert dialing == {"skills": [40001, 40003]}
    backend.pause(cid, dialing)
    skills = sim.skills()
    assert [s for s, v in skills.items() if v["stops"]] == ["40001", "40003"]
    assert not any(v["isRunning"] for s, v in skills.items() if v["campaignId"] == int(cid))
    assert backend.dialing(cid) is None

    backend.resume(cid, dialing)
    backend.resume(cid, dialing)  # again, by the same backend: nothing more is started
    skills = sim.skills()
    assert {s: v["starts"] for s, v in skills.items()} == {
        "40001": 1, "40002": 0, "40003": 1, "40004": 0, "40005": 0, "40006": 0
    }
    assert {s for s, v in skills.items() if not v["isRunning"]} == {"40002"}
    stops = api_requests(sim, "skill_stop")
    assert all(e["query"] == {"force": "false"} for e in stops)


def test_pause_waits_until_the_skills_have_stopped(start_sim, backend_for) -> None:
    # A stop answers 202 and takes effect later: here when the test lets it, once pause
    # has found each skill still running after its stop. (A delay on the clock raced the
    # calls themselves: on a busy machine the skills could stop before the first look.)
    sim = start_sim(Behaviour(invented_stop_delay_seconds=3600.0))
    cid = sim.campaign_ids[0]
    backend = backend_for(sim)
    dialing = backend.dialing(cid) or {}
    ours = skill_ids(dialing)
    assert len(ours) == 2

    def looks_after_its_stop(skill: int) -> int:
        log = sim.requests()
        stops = [e["seq"] for e in log if e["kind"] == "skill_stop"
                 and e["path"].endswith(f"/{skill}/stop")]
        return len([e for e in log if e["kind"] == "skill" and e["path"].endswith(f"/{skill}")
                    and stops and e["seq"] > stops[0]])

    with ThreadPoolExecutor(1) as pool:
        pausing = pool.submit(backend.pause, cid, dialing)
        deadline = time.monotonic() + 30
        while not all(looks_after_its_stop(s) >= 2 for s in ours):
            assert time.monotonic() < deadline and not pausing.done(), pausing
            time.sleep(0.01)
        assert not pausing.done(), "pause came back while the skills still ran"
        for skill in ours:
            sim.app.skills.set_running(skill, False)  # the stops take effect
        pausing.result(timeout=30)
    assert not any(v["isRunning"] for v in sim.skills().values() if v["campaignId"] == int(cid))


def test_a_skill_still_running_after_the_wait_is_campaign_active(start_sim, backend_for) -> None:
    sim = start_sim(Behaviour(invented_stop_delay_seconds=30.0))
    cid = sim.campaign_ids[0]
    backend = backend_for(sim, stop_wait_seconds=0.2)
    with pytest.raises(CampaignActive, match="still running"):
        backend.pause(cid, backend.dialing(cid) or {})


def test_a_409_on_stop_is_campaign_active_unless_the_skill_stopped(start_sim, backend_for) -> None:
    sim = start_sim(Behaviour(invented_conflict_skill_ids=frozenset({40001})))
    cid = sim.campaign_ids[0]
    backend = backend_for(sim)
    dialing = backend.dialing(cid)
    assert dialing == {"skills": [40001, 40002]}
    with pytest.raises(CampaignActive, match="skill 40001 refused to stop"):
        backend.pause(cid, dialing)
    # The same 409 from a skill that is stopped anyway is what pause wanted.
    sim.app.skills.set_running(40001, False)
    backend.pause(cid, dialing)
    assert not sim.skills()["40002"]["isRunning"]


def test_a_skill_that_cannot_be_restarted_is_a_terminal_error(start_sim, backend_for) -> None:
    sim = start_sim()
    cid = sim.campaign_ids[0]
    backend = backend_for(sim)
    dialing = backend.dialing(cid) or {}
    backend.pause(cid, dialing)
    sim.set(invented_conflict_skill_ids=frozenset({40002}))
    with pytest.raises(TerminalApiError, match="skill 40002 could not be restarted"):
        backend.resume(cid, dialing)
    assert sim.skills()["40001"]["isRunning"]


def test_a_start_that_never_takes_effect_is_not_taken_for_a_resume(
    start_sim, backend_for
) -> None:
    # A start answers 202, accepted: like a stop it takes effect later, or not at all. A
    # resume that returns leaves the pause record cleared: a skill still stopped then
    # would stay so, with no record left for a later run to restart it from.
    sim = start_sim(Behaviour(invented_dropped_start_skill_ids=frozenset({40002})))
    cid = sim.campaign_ids[0]
    backend = backend_for(sim, stop_wait_seconds=0.3)
    dialing = backend.dialing(cid) or {}
    assert skill_ids(dialing) == [40001, 40002]
    backend.pause(cid, dialing)
    with pytest.raises(TerminalApiError, match="skills 40002 still not running"):
        backend.resume(cid, dialing)
    skills = sim.skills()
    assert skills["40001"]["isRunning"] and skills["40002"]["starts"] == 1
    assert not skills["40002"]["isRunning"]
    sim.set(invented_dropped_start_skill_ids=frozenset())
    backend.resume(cid, dialing)  # the next try starts it
    assert sim.skills()["40002"]["isRunning"]


def test_an_unknown_campaign_is_a_terminal_404(start_sim, backend_for) -> None:
    sim = start_sim()
    with pytest.raises(TerminalApiError, match="HTTP 404"):
        backend_for(sim).dialing("999")


def _stops_still_pending(start_sim, backend_for):
    """A pause whose stops were accepted (202) but take longer than its wait: it fails
    with the skills still running, each to stop a moment later."""
    sim = start_sim(Behaviour(invented_stop_delay_seconds=0.6))
    cid = sim.campaign_ids[0]
    backend = backend_for(sim, stop_wait_seconds=0.1)
    dialing = backend.dialing(cid) or {}
    assert dialing, "the campaign dials"
    with pytest.raises(CampaignActive, match="still running"):
        backend.pause(cid, dialing)
    return sim, cid, backend, dialing


def _skills_of(sim, cid: str) -> dict[str, dict]:
    return {s: v for s, v in sim.skills().items() if v["campaignId"] == int(cid)}


def test_resume_after_a_pause_that_timed_out_cancels_the_stops_still_pending(
    start_sim, backend_for
) -> None:
    # Undone by the same backend: without a start, they would be left stopped.
    sim, cid, backend, dialing = _stops_still_pending(start_sim, backend_for)
    backend.resume(cid, dialing)
    time.sleep(0.8)
    mine = _skills_of(sim, cid)
    assert all(v["isRunning"] for v in mine.values()), mine
    backend.resume(cid, dialing)  # again, by the same backend: nothing more is started
    assert all(v["starts"] == 1 for v in _skills_of(sim, cid).values())


def test_a_restore_after_a_run_died_with_a_stop_pending_starts_the_skill(
    start_sim, backend_for
) -> None:
    # The run that paused died before the stops took effect: the skills still say
    # isRunning when the next run, which knows only the pause record, restores them.
    sim, cid, _, dialing = _stops_still_pending(start_sim, backend_for)
    mine = _skills_of(sim, cid)
    assert all(v["isRunning"] and v["stops"] == 1 for v in mine.values()), mine
    backend_for(sim).resume(cid, dialing)
    time.sleep(0.8)
    mine = _skills_of(sim, cid)
    assert all(v["isRunning"] and v["starts"] == 1 for v in mine.values()), mine


def test_a_skill_answer_about_another_skill_is_not_taken_for_this_ones(
    start_sim, backend_for
) -> None:
    """GET skills/40001 answering skill 1, stopped: read as 40001's state, a campaign
    whose skills all dial was once reported not dialing (dialing() None), so a run
    would retire its prospects without pausing it."""
    sim = start_sim()
    cid = sim.campaign_ids[0]
    other = json.dumps({"skillId": 1, "isRunning": False}).encode()
    sim.set(served_bodies={"skill": (200, other)})
    with pytest.raises(TerminalApiError, match=r"skills/40001: answer is not valid: "
                                               r"it is about skill 1"):
        backend_for(sim).dialing(cid)
    assert all(s["isRunning"] for s in sim.skills().values())


def test_a_skill_named_twice_by_the_campaign_is_stopped_once(start_sim, backend_for) -> None:
    """Both copies were once kept in the dialing state, so pause stopped the skill twice:
    the second stop met a skill still stopping, and a 409 for it would have failed the
    pause ("skill 40001 refused to stop")."""
    sim = start_sim()
    cid = sim.campaign_ids[0]
    twice = {"skills": [{"skillId": 40001}, {"skillId": 40002}, {"skillId": 40001}]}
    sim.set(served_bodies={"campaign_skills": (200, json.dumps(twice).encode())})
    backend = backend_for(sim)
    dialing = backend.dialing(cid)
    assert dialing == {"skills": [40001, 40002]}
    backend.pause(cid, dialing)
    backend.resume(cid, dialing)
    assert {s: (v["stops"], v["starts"]) for s, v in sim.skills().items()
            if v["campaignId"] == int(cid)} == {"40001": (1, 1), "40002": (1, 1)}


def test_restarting_skills_once_the_run_is_stopping_is_tried_again_within_the_grace(
    start_sim, backend_for
) -> None:
    # A stop (SIGTERM) lets the restart of what the run stopped still go; a 5xx on the
    # way out is tried again within the grace, not given up after one try.
    sim = start_sim(skills_per_campaign=1)
    cid = sim.campaign_ids[0]
    backend = backend_for(sim)
    dialing = backend.dialing(cid) or {}
    backend.pause(cid, dialing)
    sim.set(served_bodies={"skill_start": (503, b'{"error": "busy"}')})
    backend.cancel()
    started = time.monotonic()
    with pytest.raises(ServerError):  # every try answered 503: the tries ran out
        backend.resume(cid, dialing)
    assert time.monotonic() - started < 10
    assert len(api_requests(sim, "skill_start")) == 10  # FAST: max_attempts 10
    assert sim.skills()["40001"]["isRunning"]  # each took effect; only the answers failed


def test_restarting_skills_that_wait_for_the_limiter_when_the_stop_comes_still_goes(
    start_sim, backend_for
) -> None:
    sim = start_sim(skills_per_campaign=1)
    cid = sim.campaign_ids[0]
    stopping = threading.Event()
    backend = backend_for(sim, stopping=stopping)
    dialing = backend.dialing(cid) or {}
    backend.pause(cid, dialing)
    # From now on one request every 100 s: the restart waits its turn.
    slow, waiting = slow_limiter(stopping)
    slow.acquire()  # take the only token
    waiting.clear()
    backend.api.limiter = slow
    backend.api._transport._limiter = slow
    caught: dict[str, BaseException] = {}

    def go() -> None:
        try:
            backend.resume(cid, dialing)
        except BaseException as err:  # handed to the test
            caught["error"] = err

    t = threading.Thread(target=go)
    t.start()
    assert waiting.wait(30)
    backend.cancel()  # one SIGTERM
    t.join(10)
    assert not t.is_alive()
    # README: "one waiting for the rate limiter goes at once"
    assert "error" not in caught, caught
    assert sim.skills()["40001"]["isRunning"]

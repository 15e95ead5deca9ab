"""Dialing: a campaign's running Personal Connection skills, stopped and restarted.

``GET campaigns/{id}/skills`` names the campaign's skills, ``GET skills/{id}`` says
whether one ``isRunning``; ``POST skills/{id}/stop?force=false`` and ``POST
skills/{id}/start`` answer 202 and take effect later (or not at all): both are waited
for. A 409 is documented without a meaning: it is accepted when the skill is in the
wanted state anyway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from archiver.backends.cxone import answers, wire
from archiver.backends.cxone.client import CxoneApi
from archiver.errors import CampaignActive, TerminalApiError

SKILLS = "skills"  # the key of dialing()'s answer


class Dialer:
    def __init__(
        self,
        api: CxoneApi,
        *,
        stop_wait_seconds: float,
        poll_seconds: float,
        sleep: Callable[[float], None],
    ) -> None:
        self._api = api
        self._stop_wait = stop_wait_seconds
        self._poll = poll_seconds
        self._sleep = sleep
        # Skills this backend asked to stop and has not yet seen stopped: a 202 stop
        # takes effect later, so such a skill still says isRunning while it is stopping.
        self._stopping: set[int] = set()
        # Skills this backend asked to stop. A skill not among them is being restored
        # after a run that died: that run's stop may still be pending (isRunning true,
        # stopped a moment later), so it is started whatever it says.
        self._asked: set[int] = set()
        self._stopping_lock = threading.Lock()

    def require_campaign(self, campaign_id: str) -> None:
        """Raise the API's error (404: not found) when the tenant has no such campaign."""
        self._skills(campaign_id)

    def _skills(self, campaign_id: str) -> list[wire.SkillRef]:
        path = wire.CAMPAIGN_SKILLS.format(campaign_id=quote(campaign_id, safe=""))
        body = self._api.get(path, {}, campaign_id=campaign_id)
        return answers.read(wire.CampaignSkills, body, path, campaign_id).skills

    def dialing(self, campaign_id: str) -> Mapping[str, Any] | None:
        # A skill the answer names twice is still one skill: stopped once, started once.
        skills = dict.fromkeys(s.skill_id for s in self._skills(campaign_id))
        running = [sid for sid in skills if self._running(sid, campaign_id)]
        return {SKILLS: running} if running else None

    def pause(self, campaign_id: str, dialing: Mapping[str, Any]) -> None:
        ids = skill_ids(dialing)
        for sid in ids:
            path = wire.SKILL_STOP.format(skill_id=sid)
            try:
                self._api.post(path, wire.stop_params(), campaign_id=campaign_id)
                with self._stopping_lock:
                    self._stopping.add(sid)
                    self._asked.add(sid)
            except CampaignActive as err:
                if self._running(sid, campaign_id):
                    raise CampaignActive(
                        f"skill {sid} refused to stop: {err}", campaign_id=campaign_id
                    ) from err
        self._await(campaign_id, ids, running=False)

    def resume(self, campaign_id: str, dialing: Mapping[str, Any]) -> None:
        """Start the skills ``dialing`` names and wait until each says ``isRunning``: a
        start answers 202 and takes effect later, or not at all. One still not running
        when the wait ends is a TerminalApiError (the pause record stays for a later run)."""
        started: list[int] = []
        for sid in skill_ids(dialing):
            with self._stopping_lock:
                known = sid in self._asked and sid not in self._stopping
            # A skill still stopping, or one a dead run stopped, is started even though it
            # says isRunning; one this backend saw stop and start again is left alone.
            if known and self._running(sid, campaign_id, cleanup=True):
                continue  # restarted already (resume called again)
            try:
                # Made even once the run is stopping: skills must not stay stopped
                # because their run was interrupted.
                self._api.post(
                    wire.SKILL_START.format(skill_id=sid), campaign_id=campaign_id, cleanup=True
                )
                started.append(sid)
            except CampaignActive as err:
                if not self._running(sid, campaign_id, cleanup=True):
                    raise TerminalApiError(
                        f"skill {sid} could not be restarted: {err}", campaign_id=campaign_id
                    ) from err
            with self._stopping_lock:
                self._stopping.discard(sid)
        self._await(campaign_id, started, running=True)

    def _running(self, skill_id: int, campaign_id: str, *, cleanup: bool = False) -> bool:
        path = wire.SKILL.format(skill_id=skill_id)
        body = wire.skill_of(self._api.get(path, {}, campaign_id=campaign_id, cleanup=cleanup))
        skill = answers.read(wire.Skill, body, path, campaign_id)
        if skill.skill_id != skill_id:
            # Another skill's state says nothing of this one's: taken as this one's, a
            # skill still dialing could pass for stopped while its prospects are retired.
            raise TerminalApiError(
                f"answer is not valid: it is about skill {skill.skill_id}",
                campaign_id=campaign_id, endpoint=path,
            )
        return skill.is_running

    def _await(self, campaign_id: str, ids: Sequence[int], *, running: bool) -> None:
        """Until every skill of ``ids`` says ``isRunning`` is ``running``, at most
        ``stop_wait_seconds``. Stopped: retiring while a skill still dials would race the
        dialer for its prospects. Started: a resume must not pass for done while a
        skill stays stopped (the run's pause record, which a later run restarts
        from, is cleared once resume returns)."""
        deadline = time.monotonic() + self._stop_wait
        waiting = list(ids)
        while True:
            waiting = [sid for sid in waiting
                       if self._running(sid, campaign_id, cleanup=running) != running]
            if not running:
                with self._stopping_lock:
                    self._stopping.difference_update(set(ids) - set(waiting))
            if not waiting:
                return
            if time.monotonic() >= deadline:
                names = ", ".join(map(str, waiting))
                if running:
                    raise TerminalApiError(
                        f"skills {names} still not running {self._stop_wait:g} s after "
                        "they were started", campaign_id=campaign_id,
                    )
                raise CampaignActive(
                    f"skills {names} still running {self._stop_wait:g} s after they were "
                    "stopped", campaign_id=campaign_id,
                )
            self._sleep(self._poll)


def skill_ids(dialing: Mapping[str, Any]) -> list[int]:
    """The skills a stored dialing state names."""
    ids = dialing.get(SKILLS)
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in ids
    ):
        raise ValueError(f"not a CXone dialing state: {dialing!r}")
    return list(ids)

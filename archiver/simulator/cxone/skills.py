"""A campaign's skills (``GET campaigns/{id}/skills``), a skill's state (``GET
skills/{id}``, ``isRunning``) and Personal Connection start and stop (202)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from archiver.simulator.cxone import answers
from archiver.simulator.cxone.answers import CxoneError
from archiver.simulator.cxone.config import Behaviour, CxoneSimConfig
from archiver.simulator.cxone.contacts import BUSINESS_UNIT, campaign_ids
from archiver.simulator.messages import Response


@dataclass(slots=True)
class _Skill:
    skill_id: int
    campaign_id: int
    running: bool = True
    stop_at: float | None = None  # a 202 stop takes effect then
    stops: int = 0
    starts: int = 0

    def is_running(self, now: float) -> bool:
        if self.stop_at is not None and now >= self.stop_at:
            self.running, self.stop_at = False, None
        return self.running


class Skills:
    def __init__(self, config: CxoneSimConfig) -> None:
        self._lock = threading.Lock()
        self._skills: dict[int, _Skill] = {}
        self._campaigns = {str(c) for c in campaign_ids(config)}
        n = 40001
        for cid in campaign_ids(config):
            for _ in range(config.skills_per_campaign):
                self._skills[n] = _Skill(n, cid)
                n += 1

    def of_campaign(self, campaign: str) -> Response:
        if campaign not in self._campaigns:
            raise CxoneError(404, "NotFound", f"campaign {campaign} not found")
        with self._lock:
            mine = [s for s in self._skills.values() if str(s.campaign_id) == campaign]
        skills = [{"mediaType": 4, "mediaName": "Phone Call", "skillId": s.skill_id,
                   "skillName": f"Outbound PC {s.skill_id}"} for s in mine]
        return answers.ok({"businessUnitId": BUSINESS_UNIT, "totalRecords": len(skills),
                           "skills": skills})

    def detail(self, skill: str) -> Response:
        with self._lock:
            s = self._find(skill)
            running = s.is_running(time.monotonic())
        return answers.ok({
            "skillId": s.skill_id, "skillName": f"Outbound PC {s.skill_id}", "mediaTypeId": 4,
            "mediaTypeName": "Phone Call", "isActive": True, "campaignId": s.campaign_id,
            "campaignName": f"Campaign {s.campaign_id}", "isOutbound": True,
            "outboundStrategy": "Personal Connection", "isRunning": running,
        })

    def stop(self, skill: str, query: str, behaviour: Behaviour) -> Response:
        fields = answers.query(query, frozenset({"force"}))
        answers.boolean(fields, "force")
        with self._lock:
            s = self._find(skill)
            if s.skill_id in behaviour.invented_conflict_skill_ids:
                raise CxoneError(409, "Conflict", f"skill {s.skill_id} cannot be stopped now")
            s.stops += 1
            if s.is_running(time.monotonic()) and s.stop_at is None:
                s.stop_at = time.monotonic() + behaviour.invented_stop_delay_seconds
                s.is_running(time.monotonic())
        return answers.empty(202)

    def start(self, skill: str, query: str, behaviour: Behaviour) -> Response:
        answers.query(query, frozenset())
        with self._lock:
            s = self._find(skill)
            if s.skill_id in behaviour.invented_conflict_skill_ids:
                raise CxoneError(409, "Conflict", f"skill {s.skill_id} cannot be started now")
            s.starts += 1
            if s.skill_id not in behaviour.invented_dropped_start_skill_ids:
                s.running, s.stop_at = True, None
        return answers.empty(202)

    def view(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            now = time.monotonic()
            return {str(s.skill_id): {"campaignId": s.campaign_id, "isRunning": s.is_running(now),
                                      "stops": s.stops, "starts": s.starts}
                    for s in self._skills.values()}

    def set_running(self, skill_id: int, running: bool) -> None:
        with self._lock:
            s = self._skills[skill_id]
            s.running, s.stop_at = running, None

    def _find(self, skill: str) -> _Skill:
        found = self._skills.get(int(skill)) if skill.isdigit() else None
        if found is None:
            raise CxoneError(404, "NotFound", f"skill {skill} not found")
        return found

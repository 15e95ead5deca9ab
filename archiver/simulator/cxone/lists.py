"""Calling lists: ``GET lists/call-lists/{id}/attempts`` and ``DELETE
lists/call-lists/{id}/removeProspects`` with per-record results.

A removed prospect leaves the list with its attempts, so a listing in progress
shifts. The ledger counts, per externalId, how often a removal was asked for and
how often it removed the prospect.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from archiver.simulator.cxone import answers
from archiver.simulator.cxone.answers import CxoneError
from archiver.simulator.cxone.config import Behaviour, CxoneSimConfig
from archiver.simulator.messages import Request, Response

_ATTEMPT_QUERY = frozenset({"finalized", "updatedSince", "fields", "skip", "top", "orderBy"})
_SYSTEM_CLASSES = ((1, "Answered"), (2, "No Answer"), (3, "Busy"), (4, "Answering Machine"))


@dataclass(slots=True)
class _List:
    list_id: int
    prospects: dict[str, bool] = field(default_factory=dict)  # externalId -> finalized
    attempts: list[dict[str, Any]] = field(default_factory=list)


def list_ids(config: CxoneSimConfig) -> list[int]:
    return [4412 + i for i in range(config.call_lists)]


class CallLists:
    def __init__(self, config: CxoneSimConfig, dispositions: dict[int, str]) -> None:
        self._lock = threading.Lock()
        self._lists: dict[int, _List] = {}
        self.removed: Counter[str] = Counter()
        self.requested: Counter[str] = Counter()
        rng = random.Random(f"lists/{config.seed}")
        start = answers.parse_date(config.seeded_from, "seeded_from")
        contact_id = 900_000_001
        for lid in list_ids(config):
            calling = self._lists[lid] = _List(lid)
            for n in range(config.prospects_per_list):
                ext = f"P{lid}-{n:04d}"
                calling.prospects[ext] = rng.random() < config.finalized_share
                for k in range(rng.randint(1, 3)):
                    system = rng.choice(_SYSTEM_CLASSES)
                    disp = rng.choice(list(dispositions)) if system[0] == 1 else None
                    calling.attempts.append({
                        "externalId": ext, "contactId": contact_id,
                        "dateOfCall": answers.date(start + n * 60_000 + k * 3_600_000),
                        "agentDisp": disp, "agentDispDesc": dispositions.get(disp or 0),
                        "systemClass": system[0], "systemClassName": system[1],
                        "callNotes": "", "formattedPhone": f"(555) 01{n % 100:02d}-{k:04d}",
                        "causeCode": 16,
                    })
                    contact_id += 1
        self._next_contact_id = contact_id

    def add_attempt(self, list_id: str, external_id: str) -> str:
        """One more call (unanswered) of a prospect already on the list (a new attempt since
        the last listing); its contactId."""
        with self._lock:
            calling = self._find(list_id)
            if external_id not in calling.prospects:
                raise KeyError(f"prospect {external_id} is not on calling list {list_id}")
            last = max(a["dateOfCall"] for a in calling.attempts
                       if a["externalId"] == external_id)
            contact_id = self._next_contact_id
            self._next_contact_id += 1
            calling.attempts.append({
                "externalId": external_id, "contactId": contact_id, "dateOfCall": last,
                "agentDisp": None, "agentDispDesc": None, "systemClass": 2,
                "systemClassName": "No Answer", "callNotes": "",
                "formattedPhone": "(555) 0100-0009", "causeCode": 16,
            })
            return str(contact_id)

    def restore_prospect(self, list_id: str, external_id: str) -> None:
        """Put a removed prospect back on the list, finalized, with the attempts it had
        (an admin's upload; a listing lagging behind a removal reads the same)."""
        with self._lock:
            calling = self._find(list_id)
            if external_id in calling.prospects:
                raise KeyError(f"prospect {external_id} is still on calling list {list_id}")
            if not any(a["externalId"] == external_id for a in calling.attempts):
                raise KeyError(f"calling list {list_id} never had prospect {external_id}")
            calling.prospects[external_id] = True

    def attempts(self, list_id: str, query: str, behaviour: Behaviour) -> Response:
        fields = answers.query(query, _ATTEMPT_QUERY)
        finalized = answers.boolean(fields, "finalized")
        skip = answers.whole(fields, "skip", 0, low=0, high=10**9)
        top = answers.whole(fields, "top", 100, low=1, high=10_000)
        if behaviour.invented_list_max_top is not None:
            top = min(top, behaviour.invented_list_max_top)
        with self._lock:
            calling = self._find(list_id)
            chosen = sorted(
                (a for a in calling.attempts
                 if a["externalId"] in calling.prospects
                 and (finalized is None or calling.prospects[a["externalId"]] == finalized)),
                key=lambda a: int(a["contactId"]),
            )
            page = [dict(a) for a in chosen[skip: skip + top]]
            done = sum(1 for f in calling.prospects.values() if f)
        if not page:
            return answers.empty(204)
        return answers.ok({"resultSet": {
            "listName": f"List {list_id}", "prospectiveContactCount": len(calling.prospects),
            "status": "Active", "totalRecords": len(chosen), "validRecords": len(calling.prospects),
            "invalidRecords": 0, "finalizedRecords": done, "contactAttempts": page,
        }})

    def remove(self, list_id: str, req: Request, behaviour: Behaviour) -> Response:
        wanted = _prospects(req)
        successful: list[dict[str, str]] = []
        failed: list[dict[str, str]] = []
        with self._lock:
            calling = self._find(list_id)
            for ext in wanted:
                self.requested[ext] += 1
                if ext in behaviour.remove_failures:
                    failed.append({"externalId": ext, "resultCode": behaviour.remove_failures[ext]})
                elif ext not in calling.prospects:
                    failed.append({"externalId": ext, "resultCode": behaviour.invented_not_found_code})
                else:
                    del calling.prospects[ext]
                    self.removed[ext] += 1
                    successful.append({"externalId": ext, "resultCode": behaviour.invented_removed_code})
            gone = all(ext not in calling.prospects and ext not in behaviour.remove_failures
                       for ext in wanted)
        status = behaviour.invented_none_on_list_status
        if not successful and gone and status != 200:
            raise CxoneError(status, "NotFound",
                             f"none of the prospects is on calling list {list_id}",
                             shape=behaviour.error_shape, status_header=behaviour.ic_status_header)
        return answers.ok({"successfulRecords": successful, "failedRecords": failed})

    def finalized_attempts(self, list_id: str) -> dict[str, str]:
        """contactId -> externalId of the finalized attempts still on the list."""
        with self._lock:
            calling = self._find(list_id)
            return {str(a["contactId"]): a["externalId"] for a in calling.attempts
                    if calling.prospects.get(a["externalId"])}

    def _find(self, list_id: str) -> _List:
        found = self._lists.get(int(list_id)) if list_id.isdigit() else None
        if found is None:
            raise CxoneError(404, "NotFound", f"calling list {list_id} not found")
        return found


def _prospects(req: Request) -> list[str]:
    if req.content_type != "application/json":
        raise CxoneError(415, "UnsupportedMediaType", "the body must be application/json")
    try:
        body = json.loads(req.body)
    except ValueError:
        raise CxoneError(400, "InvalidBody", "the body is not JSON") from None
    items = body.get("prospectsToRemove") if isinstance(body, dict) else None
    if not isinstance(body, dict) or set(body) != {"prospectsToRemove"} or not isinstance(items, list) or not items:
        raise CxoneError(400, "InvalidBody", "expected {\"prospectsToRemove\": [{\"externalId\": ...}]}")
    wanted: list[str] = []
    for item in items:
        ext = item.get("externalId") if isinstance(item, dict) else None
        if not isinstance(item, dict) or set(item) != {"externalId"} or isinstance(ext, bool) or not isinstance(ext, str | int):
            raise CxoneError(400, "InvalidBody", "each prospect is {\"externalId\": ...}")
        wanted.append(str(ext))
    return wanted

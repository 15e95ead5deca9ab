"""``GET contacts/completed`` and ``GET dispositions``, with contacts that change while
a client pages through them.

Every update stamps a lastUpdateTime strictly later than any the tenant holds, so
an updated contact moves to the end of ``orderBy=lastUpdateTime asc``; equal times
are ordered by contactId.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from typing import Any
from urllib.parse import urlencode

from archiver.simulator.cxone import answers
from archiver.simulator.cxone.answers import CxoneError
from archiver.simulator.cxone.config import Behaviour, CxoneSimConfig
from archiver.simulator.messages import Response

BUSINESS_UNIT = 4600123
_LIST_QUERY = frozenset({
    "startDate", "endDate", "updatedSince", "fields", "top", "skip", "orderBy", "mediaTypeId",
    "skillId", "campaignId", "agentId", "teamId", "toAddress", "fromAddress", "isLogged",
    "isRefused", "isTakeover", "tags", "analyticsProcessed",
})
_DISPOSITION_QUERY = frozenset({
    "skip", "top", "searchString", "fields", "orderBy", "isActive", "isPreviewDispositions",
    "updatedSince",
})
_ORDERS = {"lastUpdateTime asc", "lastUpdateTime desc", "contactId asc", "contactId desc"}
MAX_TOP = 10_000


def campaign_ids(config: CxoneSimConfig) -> list[int]:
    return [1834501 + i for i in range(config.campaigns)]


class Contacts:
    def __init__(self, config: CxoneSimConfig) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(f"contacts/{config.seed}")
        self.dispositions = {i + 1: name for i, name in enumerate(config.dispositions)}
        # contactId -> record, the tenant's own truth.
        self._records: dict[int, dict[str, Any]] = {}
        self._last_stamp = 0
        self._config = config
        self.churned = 0
        start = answers.parse_date(config.seeded_from, "seeded_from")
        next_id = 700_000_001
        for n, cid in enumerate(campaign_ids(config)):
            for i in range(config.contacts_per_campaign):
                stamp = start + n * 86_400_000 + (i // max(1, config.same_time_group)) * 1000
                self._records[next_id] = self._seed(next_id, cid, stamp, config)
                self._last_stamp = max(self._last_stamp, stamp)
                next_id += 1

    def _seed(self, contact_id: int, campaign_id: int, stamp: int, config: CxoneSimConfig) -> dict[str, Any]:
        rng = self._rng
        disposition = (
            None if rng.random() < config.no_disposition_share
            else rng.choice(list(self.dispositions))
        )
        duration = rng.randint(5, 900)
        return {
            "contactId": contact_id,
            "masterContactId": contact_id,
            "contactStartDate": answers.date(stamp - duration * 1000),
            "lastUpdateTime": answers.date(stamp),
            "campaignId": campaign_id,
            "campaignName": f"Campaign {campaign_id}",
            "skillId": 40001,
            "skillName": "Outbound PC",
            "isOutbound": True,
            "fromAddress": "8005550100",
            "toAddress": f"555{rng.randint(1_000_000, 9_999_999)}",
            "primaryDispositionId": disposition,
            "secondaryDispositionId": None,
            "dispositionNotes": "",
            "endReason": "Contact Hung Up",
            "totalDurationSeconds": duration,
            "abandoned": False,
            "tags": [],
            "_stamp": stamp,
        }

    # -- the API -------------------------------------------------------------------
    def completed(self, query: str, behaviour: Behaviour, self_url: str) -> Response:
        fields = answers.query(query, _LIST_QUERY)
        skip = answers.whole(fields, "skip", 0, low=0, high=10**9)
        top = answers.whole(fields, "top", 100, low=1, high=MAX_TOP)
        order = fields.get("orderBy", "contactId asc")
        if order not in _ORDERS:
            raise CxoneError(400, "InvalidParameter", f"orderBy {order!r} is not supported")
        since = answers.parse_date(fields["updatedSince"], "updatedSince") if "updatedSince" in fields else None
        campaign = fields.get("campaignId")
        with self._lock:
            matching = [
                r for r in self._records.values()
                if (campaign is None or str(r["campaignId"]) == campaign)
                and (since is None or _after(r["_stamp"], since, behaviour))
            ]
            key = "_stamp" if order.startswith("lastUpdateTime") else "contactId"
            matching.sort(key=lambda r: (r[key], r["contactId"]), reverse=order.endswith("desc"))
            page = [_public(r) for r in matching[skip: skip + top]]
            poll = answers.date(max(int(time.time() * 1000), self._last_stamp))
            self._churn(campaign, behaviour, [r["contactId"] for r in page])
        if not page:
            return answers.empty(204)
        return answers.ok({
            "totalRecords": len(matching),
            "_links": _links(self_url, fields, skip, top, len(matching)),
            "businessUnitId": BUSINESS_UNIT,
            "lastPollTime": poll,
            "completedContacts": page,
        })

    def disposition_list(self, query: str, behaviour: Behaviour) -> Response:
        fields = answers.query(query, _DISPOSITION_QUERY)
        skip = answers.whole(fields, "skip", 0, low=0, high=10**9)
        top = answers.whole(fields, "top", 100, low=1, high=MAX_TOP)
        if behaviour.invented_list_max_top is not None:
            top = min(top, behaviour.invented_list_max_top)
        items = sorted(self.dispositions.items())
        page = [
            {"dispositionId": i, "dispositionName": name, "notes": "", "classificationId": 1,
             "systemOutcome": "Complete", "isActive": True, "isPreviewDisposition": False}
            for i, name in items[skip: skip + top]
        ]
        if not page:
            return answers.empty(204)
        return answers.ok({"totalRecords": len(items), "businessUnitId": BUSINESS_UNIT,
                           "dispositions": page})

    # -- churn and observation -----------------------------------------------------
    def _churn(self, campaign: str | None, behaviour: Behaviour, served: list[int]) -> None:
        count = behaviour.churn_per_request
        if count <= 0:
            return
        pool = [r for r in self._records.values()
                if campaign is None or str(r["campaignId"]) == campaign]
        from_served = min(len(served), round(count * behaviour.churn_served_share))
        chosen = set(self._rng.sample(served, from_served))
        rest = [r for r in pool if r["contactId"] not in chosen]
        chosen.update(r["contactId"] for r in self._rng.sample(rest, min(count - from_served, len(rest))))
        for record in (self._records[i] for i in sorted(chosen)):
            self._last_stamp = max(int(time.time() * 1000), self._last_stamp + 1)
            record["_stamp"] = self._last_stamp
            record["lastUpdateTime"] = answers.date(self._last_stamp)
            record["totalDurationSeconds"] += 1
            self.churned += 1

    def add(self, campaign_id: int) -> int:
        """A contact of the campaign completed now; its id."""
        with self._lock:
            contact_id = max(self._records) + 1
            self._last_stamp = max(int(time.time() * 1000), self._last_stamp + 1)
            self._records[contact_id] = self._seed(
                contact_id, campaign_id, self._last_stamp, self._config
            )
            return contact_id

    def amend(self, contact_id: int, fields: dict[str, Any]) -> None:
        """Serve these fields of a contact as given, whatever they hold (a tenant's bad
        data). A readable ``lastUpdateTime`` also moves it in the order; the tenant's
        clock is unchanged."""
        with self._lock:
            record = self._records[contact_id]
            record.update(fields)
            stamp = fields.get("lastUpdateTime")
            if isinstance(stamp, str):
                with contextlib.suppress(CxoneError):
                    record["_stamp"] = answers.parse_date(stamp, "lastUpdateTime")

    def existing(self, campaign_id: str) -> dict[str, str]:
        """contactId -> lastUpdateTime of every contact of the campaign, now."""
        with self._lock:
            return {str(r["contactId"]): r["lastUpdateTime"] for r in self._records.values()
                    if str(r["campaignId"]) == campaign_id}

    def disposition_names(self, campaign_id: str) -> dict[str, str | None]:
        """contactId -> the name of its primary disposition (None without one) of every
        contact of the campaign, now."""
        with self._lock:
            return {
                str(r["contactId"]): _name_of(self.dispositions, r["primaryDispositionId"])
                for r in self._records.values() if str(r["campaignId"]) == campaign_id
            }


def _name_of(dispositions: dict[int, str], disposition_id: Any) -> str | None:
    """The name of a disposition id as a contact holds it (an amended one may hold anything)."""
    return dispositions.get(disposition_id) if isinstance(disposition_id, int) else None


def _after(stamp: int, since: int, behaviour: Behaviour) -> bool:
    return stamp >= since if behaviour.invented_updated_since_inclusive else stamp > since


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _links(self_url: str, fields: dict[str, str], skip: int, top: int, total: int) -> dict[str, str | None]:
    def at(offset: int) -> str:
        return f"{self_url}?{urlencode({**fields, 'skip': str(offset), 'top': str(top)})}"

    return {
        "self": at(skip),
        "next": at(skip + top) if skip + top < total else None,
        "previous": at(max(0, skip - top)) if skip > 0 else None,
    }

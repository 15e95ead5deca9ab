"""The contract's calls acting on the simulated tenant: list, archive, pause and resume."""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from archiver.simulator.campaign import ACTIVE, IDLE, CampaignState, now_iso
from archiver.simulator.config import Faults, SimConfig
from archiver.simulator.dataset import CampaignData, derive_campaign_ids, derive_tags
from archiver.simulator.messages import ApiError, Response, dump, json_response, strict_fields
from archiver.simulator.tokens import TokenStore
from archiver.simulator.validate import (
    ArchiveBody,
    BodyError,
    parse_json,
    parse_status_patch,
    read_archive,
)

P = ParamSpec("P")
T = TypeVar("T")

MAX_PAGE = 1000
_IDEMPOTENCY_KEYS_KEPT = 100_000
_LIST_PARAMS = frozenset({"status", "limit", "offset"})


class SimState:
    def __init__(self, config: SimConfig, faults: Faults) -> None:
        ids = list(config.campaign_ids) or derive_campaign_ids(config.seed, config.campaigns)
        active = set(faults.active_campaigns)
        self.lock = threading.Lock()
        self.campaigns = {
            cid: CampaignState(CampaignData(cid, tag, config), ACTIVE if cid in active else IDLE)
            for cid, tag in zip(ids, derive_tags(config.seed, ids), strict=True)
        }
        self.tokens = TokenStore(config.client_id, config.client_secret)
        # Idempotency-Key -> (fingerprint of the request, stored 200 answer).
        self._idempotency: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._rng = random.Random(f"items/{config.seed}")
        self.replays = 0
        self.idempotency_conflicts = 0
        # Items whose outcomeCode or callDurationSeconds differ from the listing. The
        # contract does not say they are refused, so they are counted for tests to check.
        self.status_matrix_mismatches = 0

    def campaign(self, cid: str) -> CampaignState:
        camp = self.campaigns.get(cid)
        if camp is None:
            raise ApiError(404, "not_found", f"campaign {cid} does not exist")
        return camp

    def activate(self, cids: list[str]) -> None:
        """Start dialing campaigns newly named active by a fault change."""
        with self.lock:
            for cid in cids:
                camp = self.campaigns.get(cid)
                if camp is not None and camp.status != ACTIVE:
                    camp.set_status(ACTIVE, "fault")

    def list_attempts(self, cid: str, query: str) -> Response:
        camp = self.campaign(cid)
        offset, limit = _read_list_query(query)
        with self.lock:
            indices = camp.remaining.page(offset, limit)
        # Records are generated outside the lock: they depend on nothing mutable.
        return Response(200, dump([camp.data.record(i) for i in indices]))

    def set_status(self, cid: str, content_type: str, raw: bytes) -> Response:
        camp = self.campaign(cid)
        _require_json(content_type)
        status = _bad_request(parse_status_patch, raw)
        with self.lock:
            camp.set_status(status, "api")
        return json_response(200, {"id": cid, "status": status})

    def archive(
        self, cid: str, content_type: str, raw: bytes, key: str | None, failure_rate: float
    ) -> Response:
        camp = self.campaign(cid)
        _require_json(content_type)
        parsed = _bad_request(parse_json, raw)
        body = _bad_request(read_archive, parsed)
        if body.campaign_id != cid:
            raise ApiError(
                400, "campaign_mismatch",
                f"$.campaignId is {body.campaign_id!r} but the path names campaign {cid}",
            )
        indices, mismatches = _bad_request(_resolve, camp, body)
        fingerprint = _fingerprint(cid, parsed) if key is not None else ""
        with self.lock:
            if key is not None and key in self._idempotency:
                return self._replay(key, fingerprint)
            if camp.status == ACTIVE:
                raise ApiError(409, "campaign_active", f"campaign {cid} is actively dialing")
            self.status_matrix_mismatches += mismatches
            failed = 0
            for index in indices:
                if failure_rate and self._rng.random() < failure_rate:
                    failed += 1
                else:
                    camp.archive(index)
            answer = dump(
                {
                    "archivedCount": len(indices) - failed,
                    "failedCount": failed,
                    "migrationJobId": f"mig-{secrets.token_hex(8)}",
                    "status": "PARTIAL" if failed else "COMPLETED",
                    "timestamp": now_iso(),
                }
            )
            if key is not None:
                self._idempotency[key] = (fingerprint, answer)
                if len(self._idempotency) > _IDEMPOTENCY_KEYS_KEPT:
                    self._idempotency.popitem(last=False)
        return Response(200, answer)

    def _replay(self, key: str, fingerprint: str) -> Response:
        stored_fingerprint, answer = self._idempotency[key]
        if stored_fingerprint != fingerprint:
            self.idempotency_conflicts += 1
            raise ApiError(
                422, "idempotency_key_reused",
                f"Idempotency-Key {key!r} was used before with a different request",
            )
        self.replays += 1
        return Response(200, answer, headers=[("Idempotent-Replayed", "true")])

    def ledger(self) -> dict[str, int]:
        with self.lock:
            merged: dict[str, int] = {}
            for camp in self.campaigns.values():
                merged.update(camp.ledger_items())
        return merged

    def views(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            views = {cid: camp.view() for cid, camp in self.campaigns.items()}
        for cid, camp in self.campaigns.items():
            views[cid]["expected"] = camp.summary()
        return views

    def eligible_ids(self, cid: str, approved: set[str] | frozenset[str]) -> set[str]:
        data = self.campaign(cid).data
        return {data.attempt_id(i) for i in range(data.size) if data.is_eligible(i, approved)}


def _resolve(camp: CampaignState, body: ArchiveBody) -> tuple[list[int], int]:
    """Indices of the items' attempts, and how many items misstate the listed outcome or
    duration; BodyError when an item is not an archivable attempt of the campaign."""
    data = camp.data
    seen: set[str] = set()
    indices = []
    mismatches = 0
    for n, item in enumerate(body.items):
        where = f"$.items[{n}]"
        if item.attempt_id in seen:
            raise BodyError(f"{where}.attemptId {item.attempt_id} appears twice", "duplicate_item")
        seen.add(item.attempt_id)
        index = data.index_of(item.attempt_id)
        if index is None:
            raise BodyError(
                f"{where}.attemptId {item.attempt_id} is not an attempt of campaign "
                f"{data.campaign_id}", "unknown_attempt",
            )
        drawn = data.draw(index)
        if drawn.malformed is not None:
            raise BodyError(
                f"{where}: attempt {item.attempt_id} is a malformed record ({drawn.malformed})",
                "malformed_attempt",
            )
        if drawn.contact_id != item.contact_id:
            raise BodyError(
                f"{where}.contactId {item.contact_id} is not the contact of attempt "
                f"{item.attempt_id}", "contact_mismatch",
            )
        if not drawn.anonymized:
            raise BodyError(
                f"{where}: attempt {item.attempt_id} is not anonymized", "not_anonymized"
            )
        mismatches += item.outcome_code != drawn.outcome or item.duration != drawn.duration
        indices.append(index)
    return indices, mismatches


def _read_list_query(query: str) -> tuple[int, int]:
    params = strict_fields(query, _LIST_PARAMS, "query string", "query parameter")
    if params.get("status") != "completed":
        raise ApiError(400, "invalid_request", "status=completed is required")
    limit = _whole_number(params, "limit")
    offset = _whole_number(params, "offset")
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(400, "invalid_request", f"limit must be between 1 and {MAX_PAGE}")
    return offset, limit


def _whole_number(params: dict[str, str], name: str) -> int:
    value = params.get(name)
    if value is None:
        raise ApiError(400, "invalid_request", f"query parameter {name} is required")
    if not (value.isascii() and value.isdigit()):
        raise ApiError(400, "invalid_request", f"{name} must be a whole number, got {value!r}")
    return int(value)


def _require_json(content_type: str) -> None:
    if content_type != "application/json":
        raise ApiError(400, "invalid_request", "the body must be sent as application/json")


def _fingerprint(cid: str, parsed: Any) -> str:
    canonical = json.dumps([cid, parsed], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _bad_request(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a body check, turning its BodyError into a 400 answer."""
    try:
        return func(*args, **kwargs)
    except BodyError as err:
        raise ApiError(400, err.error, err.detail) from err

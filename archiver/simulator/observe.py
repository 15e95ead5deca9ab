"""The ``/_sim/*`` routes: what tests and benchmarks read back, plus the webhook receiver.

None of them needs a token and none is subject to faults other than
``webhook_status``: they observe the simulated tenant rather than being part of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs

from archiver.simulator.config import TUTORIAL_APPROVED
from archiver.simulator.messages import SIM_PREFIX, ApiError, Request, Response, json_response
from archiver.simulator.webhooks import secret_key, verify

if TYPE_CHECKING:
    from archiver.simulator.app import App


class SimRoutes:
    def __init__(self, app: App) -> None:
        self._app = app

    def handle(self, req: Request) -> Response:
        name = req.path[len(SIM_PREFIX) :]
        route = (req.method, name)
        try:
            if route == ("POST", "webhooks"):
                return self._receive_webhook(req)
            if route == ("POST", "faults"):
                return self._update_faults(req)
            if route == ("POST", "reset-log"):
                self._app.log.reset()
                return Response(204, content_type="")
            if req.method == "GET" and name in self._views:
                return json_response(200, self._views[name](self, req))
        except ApiError as err:
            return err.response()
        return ApiError(404, "not_found", f"no simulator route {req.method} {req.path}").response()

    def stats(self) -> dict[str, Any]:
        app = self._app
        state = app.state
        counts = app.counters()
        counters = counts.pop("counters")
        campaigns = state.views()
        totals = {key: sum(v[key] for v in campaigns.values())
                  for key in ("archived", "archive_events", "double_archived")}
        return {
            **counts,
            "rate_limited": counters.get("rate_limited", 0),
            "injected_errors": counters.get("injected_errors", 0),
            "hangs": counters.get("hangs", 0),
            "garbled": counters.get("garbled", 0),
            "auth_failures": counters.get("auth_failures", 0),
            "internal_errors": counters.get("internal_errors", 0),
            "connections_opened": counters.get("connections", 0),
            "tokens_issued": state.tokens.issued,
            "replays": state.replays,
            "idempotency_conflicts": state.idempotency_conflicts,
            "status_matrix_mismatches": state.status_matrix_mismatches,
            **totals,
            "webhooks": app.webhooks.stats(),
            "campaigns": {cid: {"status": v["status"], "history": v["history"]}
                          for cid, v in campaigns.items()},
        }

    def _ledger(self, req: Request) -> dict[str, Any]:
        return {"attempts": self._app.state.ledger()}

    def _stats(self, req: Request) -> dict[str, Any]:
        return self.stats()

    def _campaigns(self, req: Request) -> dict[str, Any]:
        return self._app.state.views()

    def _requests(self, req: Request) -> list[dict[str, Any]]:
        entries = self._app.log.entries()
        limit = parse_qs(req.query).get("limit")
        if limit and limit[0].isdigit():
            entries = entries[-int(limit[0]):] if int(limit[0]) else []
        return entries

    def _webhooks(self, req: Request) -> list[dict[str, Any]]:
        return self._app.webhooks.deliveries()

    def _faults(self, req: Request) -> dict[str, Any]:
        return self._app.faults.to_dict()

    def _eligible(self, req: Request) -> dict[str, Any]:
        params = parse_qs(req.query)
        cid = (params.get("campaign") or [""])[0]
        approved_arg = params.get("approved")
        approved = (
            {o for arg in approved_arg for o in arg.split(",") if o}
            if approved_arg else set(TUTORIAL_APPROVED)
        )
        ids = sorted(self._app.state.eligible_ids(cid, approved))
        return {"campaignId": cid, "approved": sorted(approved), "count": len(ids), "ids": ids}

    _views: ClassVar[dict[str, Callable[[SimRoutes, Request], Any]]] = {
        "ledger": _ledger,
        "stats": _stats,
        "campaigns": _campaigns,
        "requests": _requests,
        "webhooks": _webhooks,
        "faults": _faults,
        "eligible": _eligible,
    }

    def _update_faults(self, req: Request) -> Response:
        try:
            changes = json.loads(req.body or b"{}")
            if not isinstance(changes, dict):
                raise ValueError("the body must be a JSON object of fault fields")
            faults = self._app.faults.merged(changes)
        except ValueError as err:
            raise ApiError(400, "invalid_faults", str(err)) from err
        self._app.set_faults(faults)
        return json_response(200, faults.to_dict())

    def _receive_webhook(self, req: Request) -> Response:
        app = self._app
        config = app.config
        status, reason = verify(secret_key(config.webhook_secret), req.headers, req.body,
                                config.webhook_tolerance_seconds, time.time())
        forced = app.faults.webhook_status
        answer = forced if forced is not None else status
        app.webhooks.record(req.headers, req.body, status == 204, answer, reason)
        if answer == 204:
            return Response(204, content_type="")
        if answer < 400:
            return json_response(answer, {"received": True})
        return ApiError(answer, "webhook_rejected", reason if forced is None else "forced").response()

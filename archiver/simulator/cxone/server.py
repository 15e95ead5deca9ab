"""The CXone personality on a loopback port: a threading HTTP/1.1 server and its handle.

Standard library ``http.server``, as the tutorial personality, whose plumbing it
shares (:mod:`archiver.simulator.httpbase`): the simulator is an independent
reading of the API and shares no code with the client.
"""

from __future__ import annotations

import json
import socket
import threading
from types import TracebackType
from typing import Any

from archiver.netutil import is_loopback_host
from archiver.simulator.cxone.answers import dump
from archiver.simulator.cxone.app import SIM_PREFIX, CxoneApp
from archiver.simulator.cxone.config import Behaviour, CxoneSimConfig
from archiver.simulator.cxone.contacts import campaign_ids
from archiver.simulator.cxone.lists import list_ids
from archiver.simulator.httpbase import (
    BaseHandler,
    TrackingServer,
    address_family,
    http_url,
    serve_in_thread,
    stop_server,
)
from archiver.simulator.messages import Request, Response

MAX_BODY_BYTES = 4 * 1024 * 1024


class _Server(TrackingServer):
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sim: CxoneSimulator, family: socket.AddressFamily) -> None:
        self.sim = sim
        super().__init__(address, _Handler, family)


class _Handler(BaseHandler):
    def _serve(self) -> None:
        length = self.headers.get("Content-Length", "0")
        if "Transfer-Encoding" in self.headers or not length.isdigit() or int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            self._write(Response(400, dump({"error": "invalid_request",
                                            "error_description": "bad Content-Length"})))
            return
        req = self._request(self.rfile.read(int(length)))
        server = self.server
        assert isinstance(server, _Server)
        sim = server.sim
        resp = sim.observe(req) if req.path.startswith(SIM_PREFIX) else sim.app.handle(req)
        self._write(resp)

    def _bodiless(self, status: int) -> bool:
        return status in (204, 304) or status < 200


class CxoneSimulator:
    """NICE CXone's platform API, as far as archiver uses it, on a loopback port.

        with CxoneSimulator(CxoneSimConfig(), Behaviour(churn_per_request=3)) as sim:
            ...  # auth_url and api_endpoint are both sim.base_url
    """

    def __init__(
        self,
        config: CxoneSimConfig | None = None,
        behaviour: Behaviour | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not is_loopback_host(host):
            raise ValueError(f"the simulator only listens on loopback addresses, not {host!r}")
        self.config = config or CxoneSimConfig()
        self.app = CxoneApp(self.config, behaviour or Behaviour(), lambda: self.base_url)
        self._host, self._port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> CxoneSimulator:
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        self._server = _Server((self._host, self._port), self, address_family(self._host))
        self._port = self._server.server_address[1]
        self._thread = serve_in_thread(self._server)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            stop_server(server, self._thread)

    def __enter__(self) -> CxoneSimulator:
        return self.start() if self._server is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return http_url(self._host, self._port)

    @property
    def campaign_ids(self) -> list[str]:
        return [str(c) for c in campaign_ids(self.config)]

    @property
    def call_list_ids(self) -> list[str]:
        return [str(i) for i in list_ids(self.config)]

    # -- control -------------------------------------------------------------------
    @property
    def behaviour(self) -> Behaviour:
        return self.app.behaviour

    def set(self, **changes: Any) -> None:
        """Change :class:`Behaviour` settings while running."""
        self.app.set(**changes)

    def inject(self, *statuses: int) -> None:
        self.app.inject(*statuses)

    def add_contact(self, campaign_id: str) -> str:
        """A new completed contact of the campaign, stamped now; its id."""
        return str(self.app.contacts.add(int(campaign_id)))

    def amend_contact(self, contact_id: str, **fields: Any) -> None:
        """``contacts/completed`` serves these fields of the contact as given."""
        self.app.contacts.amend(int(contact_id), fields)

    def add_attempt(self, list_id: str, external_id: str) -> str:
        """A new attempt of a prospect already on the calling list; its contactId."""
        return self.app.lists.add_attempt(list_id, external_id)

    def restore_prospect(self, list_id: str, external_id: str) -> None:
        """A removed prospect is back on the calling list with its earlier attempts."""
        self.app.lists.restore_prospect(list_id, external_id)

    def lose_removal_answers(self, count: int) -> None:
        """The next ``count`` removeProspects calls are applied, then answered 502."""
        self.app.lose_removal_answers(count)

    def inject_token(self, *statuses: int) -> None:
        """The next token requests answer these statuses (429, 503, ...), in order."""
        self.app.inject_token(*statuses)

    def revoke_tokens(self) -> None:
        """Every access token issued so far is refused from now on (401)."""
        self.app.tokens.revoke_all()

    # -- observation ---------------------------------------------------------------
    def ledger(self) -> dict[str, dict[str, int]]:
        """Per externalId: removals asked for, and prospects actually removed."""
        return {"requested": dict(self.app.lists.requested), "removed": dict(self.app.lists.removed)}

    def requests(self) -> list[dict[str, Any]]:
        return self.app.log.entries()

    def skills(self) -> dict[str, dict[str, Any]]:
        return self.app.skills.view()

    def contacts(self, campaign_id: str) -> dict[str, str]:
        """contactId -> lastUpdateTime of every contact the campaign has now."""
        return self.app.contacts.existing(campaign_id)

    def dispositions(self, campaign_id: str) -> dict[str, str | None]:
        """contactId -> its primary disposition's name (None without one), for every
        contact the campaign has now."""
        return self.app.contacts.disposition_names(campaign_id)

    def finalized_attempts(self, list_id: str) -> dict[str, str]:
        """contactId -> externalId of the finalized attempts still on the list."""
        return self.app.lists.finalized_attempts(list_id)

    def stats(self) -> dict[str, Any]:
        return self.app.stats()

    def observe(self, req: Request) -> Response:
        """``/_sim/ledger``, ``/_sim/requests``, ``/_sim/skills``, ``/_sim/stats``,
        ``/_sim/contacts/{campaignId}``."""
        name = req.path[len(SIM_PREFIX):]
        views: dict[str, Any] = {
            "ledger": self.ledger, "requests": self.requests, "skills": self.skills,
            "stats": self.stats,
        }
        if req.method == "GET" and name in views:
            return Response(200, json.dumps(views[name]()).encode())
        if req.method == "GET" and name.startswith("contacts/"):
            return Response(200, json.dumps(self.contacts(name.split("/", 1)[1])).encode())
        return Response(404, dump({"error": "not_found", "error_description": req.path}))

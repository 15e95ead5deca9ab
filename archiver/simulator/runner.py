"""The simulator's Python handle: start, observe, change faults, stop."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from archiver.netutil import is_loopback_host
from archiver.simulator.app import App
from archiver.simulator.config import Faults, SimConfig
from archiver.simulator.httpbase import address_family, http_url, serve_in_thread, stop_server
from archiver.simulator.messages import SIM_PREFIX
from archiver.simulator.server import HttpServer


class Simulator:
    """A strict CXone API on a loopback port, served from a background thread."""

    def __init__(
        self,
        config: SimConfig | None = None,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not is_loopback_host(host):
            raise ValueError(f"the simulator only listens on loopback addresses, not {host!r}")
        self.config = config if config is not None else SimConfig()
        self._app = App(self.config, faults if faults is not None else Faults())
        self._host = host
        self._port = port
        self._server: HttpServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> Simulator:
        if self._server is not None or self._app.stopping.is_set():
            raise RuntimeError("a simulator can be started once")
        self._server = HttpServer((self._host, self._port), self._app, address_family(self._host))
        self._port = self._server.server_address[1]
        self._thread = serve_in_thread(self._server)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        self._app.stopping.set()
        if server is not None:
            stop_server(server, self._thread)

    def __enter__(self) -> Simulator:
        return self.start() if self._server is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return http_url(self._host, self._port)

    @property
    def webhook_url(self) -> str:
        return self.base_url + SIM_PREFIX + "webhooks"

    @property
    def campaign_ids(self) -> list[str]:
        return list(self._app.state.campaigns)

    # -- control and observation ----------------------------------------------
    @property
    def faults(self) -> Faults:
        return self._app.faults

    def set_faults(self, faults: Faults) -> None:
        self._app.set_faults(faults)

    def ledger(self) -> dict[str, int]:
        """Archive count per attempt id, for archived attempts only."""
        return self._app.state.ledger()

    def stats(self) -> dict[str, Any]:
        return self._app.sim_routes.stats()

    def campaigns(self) -> dict[str, dict[str, Any]]:
        return self._app.state.views()

    def requests(self) -> list[dict[str, Any]]:
        return self._app.log.entries()

    def reset_log(self) -> None:
        self._app.log.reset()

    def webhooks(self) -> list[dict[str, Any]]:
        return self._app.webhooks.deliveries()

    def eligible_ids(self, campaign_id: str, approved: set[str]) -> set[str]:
        """Attempts a correct client archives: anonymized, well formed, approved outcome."""
        if campaign_id not in self._app.state.campaigns:
            raise KeyError(campaign_id)
        return self._app.state.eligible_ids(campaign_id, approved)

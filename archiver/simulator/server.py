"""The simulator's HTTP server: stdlib ``http.server``, HTTP/1.1 with keep-alive.

Built on the standard library's ``http.server`` on purpose: the simulator is a
second, independent reading of the API contract, so it shares no code (and no
HTTP framework) with the client, and a threading server speaking HTTP/1.1 with
keep-alive already serves thousands of requests per second on loopback. The
plumbing it shares with the cxone personality is in :mod:`archiver.simulator.httpbase`.
"""

from __future__ import annotations

import socket

from archiver.simulator.app import App
from archiver.simulator.httpbase import BaseHandler, TrackingServer
from archiver.simulator.messages import SIM_PREFIX, ApiError

MAX_BODY_BYTES = 16 * 1024 * 1024


class HttpServer(TrackingServer):
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], app: App, family: socket.AddressFamily) -> None:
        self.app = app
        super().__init__(address, _Handler, family)

    def connection_opened(self) -> None:
        self.app.count("connections")


class _Handler(BaseHandler):
    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        req = self._request(body)
        app = self._app
        tracked = not req.path.startswith(SIM_PREFIX)
        if tracked:
            app.enter()
        try:
            resp = app.handle(req)
            if resp.delay > 0:
                app.stopping.wait(resp.delay)
            self._write(resp)
        finally:
            if tracked:
                app.leave()

    @property
    def _app(self) -> App:
        server = self.server
        assert isinstance(server, HttpServer)
        return server.app

    def _read_body(self) -> bytes | None:
        if "Transfer-Encoding" in self.headers:
            self._refuse(411, "length_required", "send a Content-Length, not a chunked body")
            return None
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.isdigit():
            self._refuse(400, "invalid_request", "Content-Length is not a whole number")
            return None
        if int(length) > MAX_BODY_BYTES:
            self._refuse(413, "body_too_large", f"bodies are limited to {MAX_BODY_BYTES} bytes")
            return None
        return self.rfile.read(int(length))

    def _refuse(self, status: int, error: str, detail: str) -> None:
        # The body was not read, so the connection cannot carry another request.
        self.close_connection = True
        self._write(ApiError(status, error, detail).response())

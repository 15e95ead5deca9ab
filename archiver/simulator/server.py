"""The simulator's HTTP server: stdlib ``http.server``, HTTP/1.1 with keep-alive.

Built on the standard library's ``http.server`` on purpose: the simulator is a
second, independent reading of the API contract, so it shares no code (and no
HTTP framework) with the client, and a threading server speaking HTTP/1.1 with
keep-alive already serves thousands of requests per second on loopback.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from archiver.simulator.app import App
from archiver.simulator.messages import SIM_PREFIX, ApiError, Request, Response

MAX_BODY_BYTES = 16 * 1024 * 1024


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], app: App, family: socket.AddressFamily) -> None:
        self.address_family = family
        self.app = app
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Kept so that stop() can end keep-alive connections idling in their threads.
        if isinstance(request, socket.socket):
            with self._open_lock:
                self._open.add(request)
        self.app.count("connections")
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write, and without Nagle's delay: small
    # answers on a kept-alive connection would otherwise wait for delayed ACKs.
    disable_nagle_algorithm = True
    server_version = "cxone-simulator/1"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request log at /_sim/requests is the record."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        path, _, query = self.path.partition("?")
        req = Request(
            method=self.command,
            path=path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            raw_headers=list(self.headers.items()),
            body=body,
        )
        app = self._app
        tracked = not path.startswith(SIM_PREFIX)
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

    def _write(self, resp: Response) -> None:
        try:
            phrase = HTTPStatus(resp.status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [
            f"HTTP/1.1 {resp.status} {phrase}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
        ]
        if resp.status != 204:
            if resp.content_type:
                lines.append(f"Content-Type: {resp.content_type}")
            lines.append(f"Content-Length: {len(resp.body)}")
        lines.extend(f"{name}: {value}" for name, value in resp.headers)
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + (resp.body if resp.status != 204 else b""))
        except OSError:  # the client gave up (timeout) or the simulator is stopping
            self.close_connection = True

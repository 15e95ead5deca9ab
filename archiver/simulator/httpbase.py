"""HTTP plumbing both simulator personalities share: server, handler base, thread, Ctrl-C.

Standard library ``http.server`` only: the simulators are an independent reading
of the API and share no code (and no HTTP framework) with the client. What each
personality answers lives in its own handler's ``_serve``; this module only
carries requests in and responses out.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from archiver.simulator.messages import Request, Response


def address_family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def http_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class TrackingServer(ThreadingHTTPServer):
    """A threading server that remembers its open connections, so stop() can end them."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], family: socket.AddressFamily
    ) -> None:
        self.address_family = family
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def connection_opened(self) -> None:
        """Called for every accepted connection."""

    def process_request(self, request: Any, client_address: Any) -> None:
        # Kept so that stop() can end keep-alive connections idling in their threads.
        if isinstance(request, socket.socket):
            with self._open_lock:
                self._open.add(request)
        self.connection_opened()
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


class BaseHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; every method goes to ``_serve``, answers leave via ``_write``."""

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
        raise NotImplementedError

    def _request(self, body: bytes) -> Request:
        path, _, query = self.path.partition("?")
        return Request(
            method=self.command,
            path=path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            raw_headers=list(self.headers.items()),
            body=body,
        )

    def _bodiless(self, status: int) -> bool:
        return status == 204

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
        bodiless = self._bodiless(resp.status)
        if not bodiless:
            if resp.content_type:
                lines.append(f"Content-Type: {resp.content_type}")
            lines.append(f"Content-Length: {len(resp.body)}")
        lines.extend(f"{name}: {value}" for name, value in resp.headers)
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + (b"" if bodiless else resp.body))
        except OSError:  # the client gave up (timeout) or the simulator is stopping
            self.close_connection = True


def serve_in_thread(server: TrackingServer) -> threading.Thread:
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05},
        name=f"cxone-simulator:{server.server_address[1]}", daemon=True,
    )
    thread.start()
    return thread


def stop_server(server: TrackingServer, thread: threading.Thread | None) -> None:
    server.shutdown()
    server.close_connections()
    server.server_close()
    if thread is not None:
        thread.join()


def wait_for_interrupt() -> None:
    """Block until Ctrl-C or SIGTERM (how a benchmark stops it), either ending cleanly."""
    done = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)

"""A webhook receiver is a server the policy names: what it answers cannot hold a run.

Only the status of its answer is read, within ``timeout_seconds`` in all: an answer whose
body trickles or never ends, or whose headers trickle, neither hangs the delivery nor
fills memory."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest

from archiver.errors import WebhookError
from archiver.stages.sinks.webhook import Webhook
from archiver.templates import DEFAULT_WEBHOOK, load_template

OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"


def _trickled_body(conn: socket.socket, stop: threading.Event, head: bytes = OK_HEAD) -> None:
    conn.sendall(head)
    while not stop.wait(0.2):
        conn.sendall(b"1\r\n \r\n")


def _endless_body(conn: socket.socket, stop: threading.Event) -> None:
    # As fast as it is read, then on without end; capped at 64 MiB here only so that a
    # client that reads it all cannot take the machine's memory with it.
    conn.sendall(OK_HEAD)
    chunk = b"x" * (1 << 20)
    for _ in range(64):
        if stop.is_set():
            return
        conn.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
    _trickled_body(conn, stop, b"")


def _trickled_headers(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while not stop.wait(0.2):
        conn.sendall(b"a")


Answer = Callable[[socket.socket, threading.Event], None]


@pytest.fixture
def receiver() -> Iterator[Callable[[Answer], str]]:
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)

    def start(answer: Answer) -> str:
        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.recv(1 << 20)  # the request (one small body)
                    with contextlib.suppress(OSError):  # the client hung up
                        answer(conn, stop)

        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}/hook"

    yield start
    stop.set()
    listener.close()


def _deliver(url: str, timeout: float) -> tuple[BaseException | None, float]:
    """Deliver one event; what it raised and how long it took (at most 20 s is waited)."""
    hook = Webhook(url, b"k" * 32, load_template(None, DEFAULT_WEBHOOK), timeout)
    outcome: list[BaseException | None] = []
    started = time.monotonic()

    def go() -> None:
        try:
            hook.deliver("evt-1", '{"n":1}')
            outcome.append(None)
        except BaseException as err:  # handed to the test
            outcome.append(err)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    thread.join(20)
    assert outcome, "the delivery was still waiting for the receiver after 20 s"
    return outcome[0], time.monotonic() - started


@pytest.mark.parametrize("answer", [_trickled_body, _endless_body], ids=["trickled", "endless"])
def test_a_2xx_whose_body_never_ends_is_delivered_without_reading_it(receiver, answer):
    # 5 s for the status line, which comes at once (room for a loaded machine); a client
    # that went on reading the body would fail there instead.
    error, took = _deliver(receiver(answer), 5.0)
    assert error is None
    assert took < 5


def test_headers_that_trickle_fail_the_delivery_at_its_timeout(receiver):
    error, took = _deliver(receiver(_trickled_headers), 1.0)
    assert isinstance(error, WebhookError)
    assert "no answer within 1 s" in str(error)
    assert took < 5


class _Receiver(http.server.BaseHTTPRequestHandler):
    """Answers POST /MODE as MODE says, counting the connections it is given."""

    protocol_version = "HTTP/1.1"
    connections = 0
    answers: ClassVar[dict[str, tuple[int, bytes, dict[str, str]]]] = {
        "/204": (204, b"", {}),
        "/small": (200, b"ok", {"Content-Length": "2"}),
        "/large": (200, b"x" * 100_000, {"Content-Length": "100000"}),
    }

    def setup(self) -> None:
        type(self).connections += 1
        super().setup()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        status, body, headers = self.answers[self.path]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):  # the client closed it: expected
            super().handle()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(("mode", "connections"), [("/204", 1), ("/small", 1), ("/large", 4)])
def test_an_answer_declared_small_keeps_its_connection_for_the_next_event(mode, connections):
    # A connection whose body is left unread cannot be reused: against a TLS receiver
    # that is a handshake per event. A body declared small is read to keep it; a large
    # one is still never read.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.connections = 0
    try:
        url = f"http://127.0.0.1:{server.server_port}{mode}"
        hook = Webhook(url, b"k" * 32, load_template(None, DEFAULT_WEBHOOK), 10.0)
        for n in range(4):
            hook.deliver(f"evt-{n}", '{"n":1}')
    finally:
        server.shutdown()
        server.server_close()
    assert _Receiver.connections == connections

"""A tiny scripted CXone stand-in on a loopback socket, for the client's tests.

By default it issues tokens for the right client credentials, refuses calls
without a valid bearer token (401), and answers every API path with a
plausible success. Tests queue replies per (method, path) to script errors,
delays and slow bodies; queued replies are served first, in order. A
responder (``respond``) answers every call of a path from the request itself,
for listings that depend on the offset. Replies can misbehave the way a
stranger's server does: trickle their bytes, stream a body of any size.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from archiver.cxone import wire

CLIENT_ID = "archiver-test-client"
CLIENT_SECRET = "s3cr3t+Value/with=chars"


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    json: Any = None
    body: bytes | None = None  # raw body; wins over ``json``
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds of silence before the status line (a hung server)
    trickle: float = 0.0  # seconds between single bytes of the whole answer, head included
    # A body streamed as it is produced, of any size, without Content-Length (the
    # connection closes after it); wins over ``body`` and ``json``.
    stream: Callable[[], Iterable[bytes]] | None = None

    def payload(self) -> bytes:
        if self.body is not None:
            return self.body
        return b"" if self.json is None else json.dumps(self.json).encode()


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    client_port: int
    at: float  # time.monotonic() on arrival

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


class FakeCxone:
    """Scripted loopback server; ``url`` is its base URL once started."""

    def __init__(self, *, token_lifetime: float = 3600.0) -> None:
        self.token_lifetime = token_lifetime
        self.token_delay = 0.0
        self._lock = threading.Lock()
        self._scripts: dict[tuple[str, str], deque[Reply]] = {}
        self._responders: dict[tuple[str, str], Callable[[Seen], Reply]] = {}
        self._requests: list[Seen] = []
        self._valid: set[str] = set()
        self.issued: list[str] = []
        self.open_connections = 0
        self.stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeCxone:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def script(self, method: str, path: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts.setdefault((method, path), deque()).extend(replies)

    def respond(self, method: str, path: str, responder: Callable[[Seen], Reply]) -> None:
        """Answer every call of (method, path) with ``responder(request)`` (after queued replies)."""
        with self._lock:
            self._responders[(method, path)] = responder

    def revoke_tokens(self) -> None:
        with self._lock:
            self._valid.clear()

    def seen(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [
                r
                for r in self._requests
                if (method is None or r.method == method) and (path is None or r.path == path)
            ]

    # -- called from handler threads ---------------------------------------------

    def answer(self, seen: Seen) -> Reply:
        with self._lock:
            self._requests.append(seen)
            queued = self._scripts.get((seen.method, seen.path))
            if queued:
                return queued.popleft()
            responder = self._responders.get((seen.method, seen.path))
            if seen.path == wire.TOKEN_PATH and responder is None:
                return self._token(seen)
            auth = seen.headers.get("authorization", "")
            if seen.path != wire.TOKEN_PATH and (
                not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self._valid
            ):
                return Reply(401, {"error": "invalid_token", "error_description": "token expired"})
        if responder is not None:
            return responder(seen)
        return self._default(seen)

    def _token(self, seen: Seen) -> Reply:
        form = seen.form()
        if form.get("client_id") != [CLIENT_ID] or form.get("client_secret") != [CLIENT_SECRET]:
            return Reply(
                401,
                {"error": "invalid_client", "error_description": "Client authentication failed"},
            )
        token = f"tok-{len(self.issued) + 1}-opaque"
        self.issued.append(token)
        self._valid.add(token)
        return Reply(
            200, {"access_token": token, "expires_in": self.token_lifetime}, delay=self.token_delay
        )

    def _default(self, seen: Seen) -> Reply:
        if seen.method == "POST" and seen.path.endswith("/contacts/archive"):
            items = seen.json().get("items", [])
            return Reply(200, {"archivedCount": len(items), "failedCount": 0, "status": "OK"})
        if seen.method == "GET" and seen.path.endswith("/attempts"):
            return Reply(200, [])
        return Reply(200, {"status": "OK"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a hung reply must not hold up teardown
    fake: FakeCxone


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is observable
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.fake._lock:
            self.server.fake.open_connections += 1

    def finish(self) -> None:
        with self.server.fake._lock:
            self.server.fake.open_connections -= 1
        super().finish()

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client_port=self.client_address[1],
            at=time.monotonic(),
        )
        fake = self.server.fake
        reply = fake.answer(seen)
        if reply.delay and fake.stopping.wait(reply.delay):
            self.close_connection = True
            return
        try:
            if reply.stream is not None:
                self._stream(reply, reply.stream())
            elif reply.trickle:
                self._trickle(reply)
            else:
                self._send_head(reply, reply.payload())
                self.wfile.write(reply.payload())
        except OSError:  # the client gave up (timeout): nothing to answer
            self.close_connection = True

    def _head(self, reply: Reply, length: int | None) -> bytes:
        lines = [f"HTTP/1.1 {reply.status} {self.responses.get(reply.status, ('',))[0]}"]
        lines += [f"{name}: {value}" for name, value in reply.headers.items()]
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {length}" if length is not None else "Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send_head(self, reply: Reply, payload: bytes) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()

    def _trickle(self, reply: Reply) -> None:
        payload = reply.payload()
        for byte in self._head(reply, len(payload)) + payload:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            if self.server.fake.stopping.wait(reply.trickle):
                break
        self.close_connection = True

    def _stream(self, reply: Reply, body: Iterable[bytes]) -> None:
        self.wfile.write(self._head(reply, None))
        for chunk in body:
            if self.server.fake.stopping.is_set():
                break
            self.wfile.write(chunk)
        self.close_connection = True


# -- for end-to-end runs of the CLI against a FakeCxone ---------------------------


def attempt(attempt_id: str, **over: Any) -> dict[str, Any]:
    """A listed record that parses, anonymized and with an approved outcome."""
    record: dict[str, Any] = {
        "id": attempt_id,
        "contactId": f"c-{attempt_id}",
        "outcomeCode": "NO_ANSWER",
        "disposition": "COMPLETED",
        "duration": 12,
        "anonymized": True,
    }
    record.update(over)
    return record


def offset_of(seen: Seen) -> tuple[int, int]:
    """(offset, limit) of a listing request."""
    return int(seen.query["offset"][0]), int(seen.query["limit"][0])


def fake_env(fake: FakeCxone, **extra: str) -> dict[str, str]:
    """The environment of an ``archiver`` subprocess that talks to ``fake``."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    env.update(CXONE_BASE_URL=fake.url, CXONE_CLIENT_ID=CLIENT_ID, CXONE_CLIENT_SECRET=CLIENT_SECRET)
    env.update(extra)
    return env

"""The last N API requests as received, so tests can see what a client really sent.

Bodies are kept as bytes, compressed when large, and parsed only when read: an
archive call of 200 items is about 50 kB as JSON text, several times that as
dicts, and under 10 kB compressed, which keeps a full log of a half-million
attempt run in a few megabytes.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections import deque
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode

from archiver.simulator.messages import Request

_SECRET_FIELDS = frozenset({"client_secret", "password"})
_COMPRESS_ABOVE = 1024


class _Entry(NamedTuple):
    seq: int
    at: float
    kind: str
    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    content_type: str
    body: bytes
    compressed: bool
    status: int


class RequestLog:
    def __init__(self, size: int) -> None:
        self._lock = threading.Lock()
        self._entries: deque[_Entry] = deque(maxlen=max(0, size))
        self._seq = 0

    def record(self, req: Request, kind: str, status: int) -> None:
        headers = tuple((name, _redact_header(name, value)) for name, value in req.raw_headers)
        body = req.body
        if req.content_type == "application/x-www-form-urlencoded":
            body = _redact_form(body)
        compressed = len(body) > _COMPRESS_ABOVE
        if compressed:
            body = zlib.compress(body, 1)
        with self._lock:
            self._seq += 1
            self._entries.append(
                _Entry(self._seq, time.time(), kind, req.method, req.path, req.query, headers,
                       req.content_type, body, compressed, status)
            )

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            snapshot = list(self._entries)
        return [_render(e) for e in snapshot]


def _redact_header(name: str, value: str) -> str:
    if name.lower() != "authorization":
        return value
    scheme, _, credentials = value.partition(" ")
    return f"{scheme} <redacted>" if credentials else "<redacted>"


def _redact_form(body: bytes) -> bytes:
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return b"<unparseable form>"
    return urlencode([(k, "<redacted>" if k in _SECRET_FIELDS else v) for k, v in pairs]).encode()


def _render(e: _Entry) -> dict[str, Any]:
    body: Any = None
    raw = zlib.decompress(e.body) if e.compressed else e.body
    if raw:
        if e.content_type == "application/x-www-form-urlencoded":
            body = dict(parse_qsl(raw.decode("ascii", "replace"), keep_blank_values=True))
        else:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
    return {
        "seq": e.seq,
        "at": e.at,
        "kind": e.kind,
        "method": e.method,
        "path": e.path,
        "query": dict(parse_qsl(e.query, keep_blank_values=True)),
        "query_string": e.query,
        "headers": dict(e.headers),
        "body": body,
        "status": e.status,
    }

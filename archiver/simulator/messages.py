"""Requests and answers as the simulator's routes see them, free of socket details."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

# The simulator's own routes (stats, ledger, faults, webhooks), outside the API.
SIM_PREFIX = "/_sim/"


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # names lower-cased
    raw_headers: list[tuple[str, str]]  # as sent, for the request log
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0  # seconds to hold the answer back (latency, hangs)


class ApiError(Exception):
    """Answered as ``{"error": ..., "detail": ...}`` with ``status``."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or []

    def response(self) -> Response:
        body = {"error": self.error, "detail": self.detail}
        return Response(self.status, dump(body), headers=list(self.headers))


def dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def json_response(status: int, value: Any) -> Response:
    return Response(status, dump(value))


def strict_fields(text: str, allowed: frozenset[str], container: str, noun: str) -> dict[str, str]:
    """The fields of a query string or form body, read strictly: every pair well
    formed, none repeated, none unknown; ApiError 400 naming ``container``/``noun``
    otherwise (e.g. "query string"/"query parameter")."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError as err:
        raise ApiError(400, "invalid_request", f"malformed {container}: {err}") from err
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise ApiError(400, "invalid_request", f"a {noun} is repeated")
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown {noun}(s): {', '.join(unknown)}")
    return fields

"""CXone's answers: JSON bodies, the three error shapes, dates with a literal Z."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from archiver.simulator.cxone.config import ErrorShape
from archiver.simulator.messages import Response

IC_STATUS = "icStatusDescription"


class CxoneError(Exception):
    """An error answer: ``status`` with a body of the chosen shape and the
    ``icStatusDescription`` header."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str,
        *,
        shape: ErrorShape = "acd",
        headers: list[tuple[str, str]] | None = None,
        status_header: bool = True,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.shape = shape
        self.headers = headers or []
        self.status_header = status_header

    def response(self) -> Response:
        body: dict[str, Any]
        if self.shape == "platform":
            body = {"code": self.error, "details": self.description, "errors": [self.description]}
        elif self.shape == "message":
            body = {"message": self.description}
        else:
            body = {"error": self.error, "error_description": self.description}
        headers = [(IC_STATUS, self.description)] if self.status_header else []
        headers.extend(self.headers)
        return Response(self.status, dump(body), headers=headers)


def dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def ok(value: Any, status: int = 200) -> Response:
    return Response(status, dump(value))


def empty(status: int) -> Response:
    """204 (no records) or 202 (accepted): no body."""
    return Response(status, b"", content_type="")


def date(ms: int) -> str:
    """Milliseconds since the epoch as the API writes dates: UTC, literal Z."""
    seconds, rest = divmod(ms, 1000)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{rest:03d}Z"


def parse_date(text: str, name: str) -> int:
    """An ISO-8601 UTC date of a query parameter, in milliseconds; 400 otherwise."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise CxoneError(400, "InvalidParameter", f"{name} is not an ISO-8601 date") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return round(when.timestamp() * 1000)


def query(text: str, allowed: frozenset[str]) -> dict[str, str]:
    """A query string, read strictly: no repeats, no parameter the call does not take."""
    pairs = parse_qsl(text, keep_blank_values=True)
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise CxoneError(400, "InvalidParameter", "a query parameter is repeated")
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise CxoneError(400, "InvalidParameter", f"unknown query parameter(s): {', '.join(unknown)}")
    return fields


def whole(fields: dict[str, str], name: str, default: int, *, low: int, high: int) -> int:
    """An integer query parameter within [low, high]; 400 otherwise."""
    text = fields.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise CxoneError(400, "InvalidParameter", f"{name} is not an integer") from None
    if not low <= value <= high:
        raise CxoneError(400, "InvalidParameter", f"{name} must be within {low}..{high}")
    return value


def boolean(fields: dict[str, str], name: str) -> bool | None:
    text = fields.get(name)
    if text is None:
        return None
    if text.lower() not in ("true", "false"):
        raise CxoneError(400, "InvalidParameter", f"{name} must be true or false")
    return text.lower() == "true"

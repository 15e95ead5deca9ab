"""openapi-core views of what crossed the wire: logged requests and live answers.

The simulator's request log keeps each request as received (method, raw path,
raw query string, headers as sent, parsed body); these adapters turn an entry
back into the shape openapi-core validates, without going through the client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import requests
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.support import REPO

SPEC_PATH = REPO / "schemas" / "cxone-archive.openapi.yaml"
FORM = "application/x-www-form-urlencoded"


def load_spec(path: Path = SPEC_PATH) -> OpenAPI:
    return OpenAPI.from_file_path(str(path))


class LoggedRequest:
    """A request from ``Simulator.requests()``, as openapi-core's Request protocol."""

    def __init__(self, host_url: str, entry: Mapping[str, Any]) -> None:
        self.host_url = host_url
        self.path: str = entry["path"]
        self.method: str = entry["method"].lower()
        headers: dict[str, str] = entry["headers"]
        self.content_type: str = _header(headers, "Content-Type") or ""
        self.body: bytes | None = _body_bytes(entry["body"], self.content_type)
        self.parameters = RequestParameters(
            # Every pair, repeats included: a repeated parameter must stay visible.
            query=ImmutableMultiDict(parse_qsl(entry["query_string"], keep_blank_values=True)),
            header=Headers(list(headers.items())),
        )


class BuiltRequest:
    """A request assembled in a test, for checks that need a body the client never sends."""

    def __init__(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> None:
        self.host_url = "http://127.0.0.1:8080"
        self.path = path
        self.method = method.lower()
        self.content_type = "application/json" if json_body is not None else ""
        self.body = json.dumps(json_body).encode() if json_body is not None else None
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list((query or {}).items())),
            header=Headers(list((headers or {}).items())),
        )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _body_bytes(body: Any, content_type: str) -> bytes | None:
    """The logged body, serialised again (the log parses JSON and forms when read)."""
    if body is None:
        return None
    if content_type.split(";", 1)[0].strip().lower() == FORM and isinstance(body, dict):
        return urlencode(body).encode()
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def describe(err: BaseException, limit: int = 6) -> str:
    """One line per problem, following the cause chain down to the schema errors.

    The exceptions' own messages repeat the whole offending value (a 200-item
    body), so schema errors are listed by location instead, a few at most.
    """
    parts: list[str] = []
    seen: BaseException | None = err
    while seen is not None:
        schema_errors = list(getattr(seen, "schema_errors", ()) or ())
        if schema_errors:
            parts.append(type(seen).__name__)
            for schema_error in schema_errors[:limit]:
                where = "/".join(str(p) for p in schema_error.absolute_path) or "(root)"
                parts.append(f"  at {where}: {schema_error.message}")
            if len(schema_errors) > limit:
                parts.append(f"  ... and {len(schema_errors) - limit} more")
        else:
            parts.append(f"{type(seen).__name__}: {_shorten(str(seen))}")
        seen = seen.__cause__
    return "\n".join(parts)


def _shorten(text: str, width: int = 300) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def request_errors(spec: OpenAPI, request: Any) -> list[str]:
    return [describe(e) for e in spec.iter_request_errors(request)]


def response_errors(spec: OpenAPI, request: Any, response: Any) -> list[str]:
    return [describe(e) for e in spec.iter_response_errors(request, response)]


def declared(spec: OpenAPI, method: str, template: str, location: str) -> set[str]:
    """Names of the parameters an operation declares in ``location`` (query, header, ...)."""
    path_item = spec.spec / "paths" / template
    names: set[str] = set()
    for holder in (path_item, path_item / method):
        if "parameters" in holder:
            for param in holder / "parameters":
                with param.open() as resolved:
                    if resolved["in"] == location:
                        names.add(resolved["name"])
    return names


def path_template(spec: OpenAPI, path: str) -> str | None:
    """The spec's path template that ``path`` fills in, if any."""
    with (spec.spec / "paths").open() as paths:
        templates = list(paths)
    for template in templates:
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            return str(template)
    return None


def documented_statuses(spec: OpenAPI, method: str, template: str) -> set[str]:
    with (spec.spec / "paths" / template / method / "responses").open() as responses:
        return {str(code) for code in responses}


def status_documented(status: int, documented: set[str]) -> bool:
    return str(status) in documented or f"{str(status)[0]}XX" in documented


class LiveResponse:
    """A ``requests`` answer as openapi-core's Response protocol."""

    def __init__(self, response: requests.Response) -> None:
        self.status_code = response.status_code
        self.content_type = response.headers.get("Content-Type", "")
        self.headers = Headers(list(response.headers.items()))
        self.data: bytes | None = response.content

"""Client-credentials tokens: random, with an expiry, checked on every API call."""

from __future__ import annotations

import hmac
import secrets
import threading
import time

from archiver.simulator.messages import ApiError, strict_fields

_FORM = "application/x-www-form-urlencoded"
_FIELDS = frozenset({"grant_type", "client_id", "client_secret", "scope"})
_PRUNE_AT = 1024


class TokenStore:
    def __init__(self, client_id: str, client_secret: str) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()
        self.issued = 0

    def issue(self, content_type: str, body: bytes, lifetime: float) -> str:
        """A new token for a valid client-credentials form; ApiError otherwise."""
        if content_type != _FORM:
            raise ApiError(400, "invalid_request", f"token requests must be sent as {_FORM}")
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError as err:
            raise ApiError(400, "invalid_request", f"malformed form body: {err}") from err
        form = strict_fields(text, _FIELDS, "form body", "form field")
        missing = sorted({"grant_type", "client_id", "client_secret"} - set(form))
        if missing:
            raise ApiError(400, "invalid_request", f"missing form field(s): {', '.join(missing)}")
        if form["grant_type"] != "client_credentials":
            raise ApiError(401, "invalid_client", "only grant_type=client_credentials is accepted")
        good_id = hmac.compare_digest(form["client_id"].encode(), self._client_id.encode())
        good_secret = hmac.compare_digest(
            form["client_secret"].encode(), self._client_secret.encode()
        )
        if not (good_id and good_secret):
            raise ApiError(401, "invalid_client", "unknown client or wrong secret")
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            if len(self._expiry) >= _PRUNE_AT:
                self._expiry = {t: e for t, e in self._expiry.items() if e > now}
            self._expiry[token] = now + lifetime
            self.issued += 1
        return token

    def check(self, authorization: str | None) -> None:
        """Raise 401 unless ``authorization`` carries a live bearer token."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("missing bearer token", None)
        expiry = self._expiry.get(token.strip())
        if expiry is None:
            raise _unauthorized("unknown token", "invalid_token")
        if expiry <= time.monotonic():
            raise _unauthorized("token expired", "invalid_token")


def _unauthorized(detail: str, code: str | None) -> ApiError:
    # RFC 6750: a request without credentials gets a bare challenge, without an error code.
    challenge = "Bearer" if code is None else f'Bearer error="{code}", error_description="{detail}"'
    return ApiError(401, code or "unauthorized", detail, [("WWW-Authenticate", challenge)])

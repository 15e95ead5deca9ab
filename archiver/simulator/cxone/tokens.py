"""``POST /auth/token``: the password grant with an access key, the refresh_token grant,
the application's credentials as HTTP Basic (or in the form), and bearer checks."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl

from archiver.simulator.cxone.answers import CxoneError, dump
from archiver.simulator.cxone.config import Behaviour, CxoneSimConfig
from archiver.simulator.messages import Request, Response

FORM = "application/x-www-form-urlencoded"
_FIELDS = frozenset(
    {"grant_type", "username", "password", "refresh_token", "client_id", "client_secret", "scope"}
)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _refused(error: str, description: str) -> CxoneError:
    return CxoneError(400, error, description)


class Tokens:
    def __init__(self, config: CxoneSimConfig, base_url: Callable[[], str]) -> None:
        self._config = config
        self._base_url = base_url
        self._lock = threading.Lock()
        self._access: dict[str, float] = {}  # token -> expiry (monotonic)
        self._refresh: dict[str, float] = {}
        self.grants: Counter[str] = Counter()

    def grant(self, req: Request, behaviour: Behaviour) -> Response:
        if req.content_type != FORM:
            raise _refused("invalid_request", f"the token request must be {FORM}")
        try:
            pairs = parse_qsl(req.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise _refused("invalid_request", "malformed form body") from None
        form = dict(pairs)
        if len(form) != len(pairs) or set(form) - _FIELDS:
            raise _refused("invalid_request", "repeated or unknown form fields")
        self._check_client(req, form)
        grant = form.get("grant_type")
        if grant == "password":
            good = _same(form.get("username", ""), self._config.access_key_id) and _same(
                form.get("password", ""), self._config.access_key_secret
            )
            if not good:
                raise _refused("invalid_grant", "unknown access key or wrong secret")
        elif grant == "refresh_token":
            if not self._take_refresh(form.get("refresh_token", "")):
                raise _refused("invalid_grant", "refresh token unknown or expired")
        else:
            raise _refused("unsupported_grant_type", "use password or refresh_token")
        self.grants[grant] += 1
        return self._issue(behaviour)

    def check(self, authorization: str | None) -> None:
        """401 unless ``authorization`` carries a live bearer token."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise CxoneError(401, "invalid_token", "missing bearer token")
        with self._lock:
            expiry = self._access.get(token.strip())
        if expiry is None or expiry <= time.monotonic():
            raise CxoneError(401, "invalid_token", "token expired or revoked")

    def revoke_all(self) -> None:
        """Every access token stops working (refresh tokens stay valid)."""
        with self._lock:
            self._access.clear()

    def _check_client(self, req: Request, form: dict[str, str]) -> None:
        basic = req.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                pair = base64.b64decode(basic[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise _refused("invalid_client", "malformed Basic credentials") from None
            client_id, _, client_secret = pair.partition(":")
        else:
            client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        if not (_same(client_id, self._config.client_id)
                and _same(client_secret, self._config.client_secret)):
            raise _refused("invalid_client", "unknown application or wrong secret")

    def _take_refresh(self, token: str) -> bool:
        with self._lock:
            expiry = self._refresh.pop(token, None)  # a refresh token is used once
        return expiry is not None and expiry > time.monotonic()

    def _issue(self, behaviour: Behaviour) -> Response:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._access = {t: e for t, e in self._access.items() if e > now}
            self._access[access] = now + behaviour.token_lifetime_seconds
            self._refresh[refresh] = now + behaviour.refresh_token_lifetime_seconds
        expires_in = behaviour.reported_expires_in or behaviour.token_lifetime_seconds
        body = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": round(expires_in, 3),
            "refresh_token": refresh,
            "refresh_token_server_uri": self._base_url() + "/auth/token",
            "id_token": self._id_token(),
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        }
        return Response(200, dump(body), headers=[("Cache-Control", "no-store")])

    def _id_token(self) -> str:
        def part(value: Mapping[str, object]) -> str:
            return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

        claims = {"iss": self._base_url(), "tenantId": self._config.tenant_id}
        return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."

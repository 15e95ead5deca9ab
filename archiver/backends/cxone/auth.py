"""CXone tokens: the access key's password grant, refresh_token grants before expiry,
and a fresh login when the API refuses a token it should have accepted.

The registered application authenticates itself with HTTP Basic
(``client_secret_basic``); the access key (id and secret) is the grant's username
and password. There is no client_credentials grant on CXone.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from archiver.backends.cxone import wire
from archiver.cxone.auth import Renewal
from archiver.errors import AuthError
from archiver.report.redact import register_secret

log = logging.getLogger(__name__)

# Sends one token form, answers the parsed token and time.monotonic() when the form
# went out; AuthError when the grant is refused.
Issue = Callable[[Mapping[str, str]], tuple[wire.TokenAnswer, float]]


@dataclass(frozen=True, slots=True)
class Credentials:
    """The access key and the registered application, as read from the environment."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    client_id: str
    client_secret: str = field(repr=False)

    def register(self) -> None:
        """Mask the secrets in every log line from now on."""
        register_secret(self.access_key_secret)
        register_secret(self.client_secret)

    def secrets(self) -> tuple[str, ...]:
        return (self.access_key_secret, self.client_secret)


class Tokens:
    """The current access token, shared by every thread of a run."""

    def __init__(
        self, credentials: Credentials, issue: Issue, *, issuer: str = "the token endpoint",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._credentials = credentials
        self._issue = issue
        self._clock = clock
        # When a token is replaced: the same rule as the campaign-archive client's.
        self._renewal = Renewal(issuer)
        # Held while a grant is under way: the other threads wait for its token.
        self._lock = threading.Lock()
        self._access: str | None = None
        self._refresh: str | None = None
        self._renew_at = float("-inf")
        self._refused: AuthError | None = None
        # Its own lock: error texts are scrubbed of issued tokens while a grant holds the main one.
        self._issued_lock = threading.Lock()
        self._issued: tuple[str, ...] = ()
        self.grants: dict[str, int] = {wire.GRANT_PASSWORD: 0, wire.GRANT_REFRESH: 0}

    def get(self) -> str:
        """A token that is not about to expire: the cached one, a refreshed one, or a new login."""
        with self._lock:
            now = self._clock()
            if self._access is not None and now < self._renew_at:
                return self._access
            if self._refused is not None:
                # A copy per caller: one exception object raised by many threads
                # would share (and lengthen) one traceback.
                raise copy.copy(self._refused) from None
            issued = self._refreshed() if self._refresh else None
            if issued is None:
                issued = self._login()
            self._keep(*issued)
            assert self._access is not None
            return self._access

    def relogin(self, stale: str) -> None:
        """The API refused ``stale``: the next :meth:`get` logs in afresh (unless
        another thread already replaced it)."""
        with self._lock:
            if self._access == stale:
                self._access = None
                self._refresh = None

    def issued(self) -> tuple[str, ...]:
        """Tokens handed out so far, to scrub from error texts."""
        with self._issued_lock:
            return self._issued

    def _refreshed(self) -> tuple[wire.TokenAnswer, float] | None:
        assert self._refresh is not None
        self.grants[wire.GRANT_REFRESH] += 1
        try:
            return self._issue(wire.refresh_form(self._refresh))
        except AuthError as err:
            # An expired or revoked refresh token: the access key logs in again.
            log.info("refresh token refused (%s); logging in again", err)
            self._refresh = None
            return None

    def _login(self) -> tuple[wire.TokenAnswer, float]:
        self.grants[wire.GRANT_PASSWORD] += 1
        form = wire.password_form(
            self._credentials.access_key_id, self._credentials.access_key_secret
        )
        try:
            return self._issue(form)
        except AuthError as err:
            self._refused = err
            raise

    def _keep(self, answer: wire.TokenAnswer, sent_at: float) -> None:
        for secret in (answer.access_token, answer.refresh_token, answer.id_token):
            register_secret(secret)
        self._access = answer.access_token
        self._refresh = answer.refresh_token or self._refresh
        self._renew_at = self._renewal.due(answer.expires_in, sent_at, self._clock())
        with self._issued_lock:
            self._issued = (*self._issued[-3:], answer.access_token)

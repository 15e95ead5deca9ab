"""The OAuth access token: cached, refreshed before it expires, one refresh at a time.

When a token is replaced (:class:`Renewal`) is the same rule for both APIs' clients:
this one's :class:`TokenCache` and the real-tenant backend's
(:mod:`archiver.backends.cxone.auth`).
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from archiver.errors import AuthError

# Refresh this long before expiry: min(MARGIN_CAP_SECONDS, MARGIN_FRACTION of the lifetime),
# so a token is never sent in its last moments (clock skew, slow requests).
MARGIN_CAP_SECONDS = 60.0
MARGIN_FRACTION = 0.1
# Tokens remembered for scrubbing them out of error texts the server may echo.
REMEMBERED = 4

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Token:
    """A freshly issued access token and its lifetime in seconds."""

    value: str
    expires_in: float
    # time.monotonic() when the request that got it went out (after any wait for its
    # turn): the server starts the lifetime on receipt, no earlier. None: when it was
    # asked for.
    sent_at: float | None = None

    def __repr__(self) -> str:
        return f"Token(expires_in={self.expires_in})"


def refresh_margin(lifetime: float) -> float:
    """How long before expiry a token of ``lifetime`` seconds is replaced."""
    return min(MARGIN_CAP_SECONDS, MARGIN_FRACTION * max(0.0, lifetime))


class Renewal:
    """When a token is replaced: ``refresh_margin`` before the end of the lifetime its
    answer states (``expires_in``), counted from when its request went out.

    A lifetime that is over, less the margin, before its answer even arrives (an
    ``expires_in`` of a second from a server slower than that, or of a millisecond)
    cannot be renewed ahead of time: renewing it at once would ask for a new token
    before every call, twice the calls for a server already slow, which slows it
    further. Such a token is kept until the API refuses it (401), which replaces it
    with one new token and sends the call again. A warning, once, names the
    ``expires_in`` the server sent."""

    def __init__(self, issuer: str) -> None:
        self._issuer = issuer  # who answers the token requests, for the warning
        self._warned = False

    def due(self, expires_in: float, sent_at: float, arrived_at: float) -> float:
        """When the token whose request went out at ``sent_at`` and whose answer, stating
        ``expires_in``, arrived at ``arrived_at`` is to be replaced; ``math.inf``: not
        before the API refuses it. Called under the token cache's lock."""
        due = sent_at + expires_in - refresh_margin(expires_in)
        if due > arrived_at:
            return due
        if not self._warned:
            self._warned = True
            log.warning(
                "%s answered expires_in %g s, used up before the answer arrived %.3g s after "
                "the request: its tokens are kept until the API refuses one (401), not "
                "replaced before every call", self._issuer, expires_in, arrived_at - sent_at,
            )
        return math.inf


# What an access token may hold to go out in an Authorization header as it came
# (RFC 6750's b64token). Other text cannot: http.client refuses what is not Latin-1,
# and a space or a line break would split the header or change what a server reads.
BEARER_TOKEN = r"^[A-Za-z0-9\-._~+/]+=*$"


def bearer(token: str) -> dict[str, str]:
    """The request header that carries an access token."""
    return {"Authorization": f"Bearer {token}"}


class TokenCache:
    """Holds the current access token; callers share it across threads."""

    def __init__(
        self, *, issuer: str = "the token endpoint", clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._renewal = Renewal(issuer)
        # Held while fetching, so concurrent callers wait for one refresh
        # instead of each asking the token endpoint.
        self._lock = threading.Lock()
        self._value: str | None = None
        self._refresh_at = float("-inf")
        # Refused credentials stay refused: later callers get the same error at once
        # instead of asking the token endpoint again.
        self._refused: BaseException | None = None
        # Separate, because error texts are scrubbed while a fetch holds the main lock.
        self._issued_lock = threading.Lock()
        self._issued: deque[str] = deque(maxlen=REMEMBERED)

    def get(self, fetch: Callable[[], Token]) -> str:
        """The cached token, or a new one from ``fetch`` when there is none or it nears expiry."""
        with self._lock:
            now = self._clock()
            if self._value is not None and now < self._refresh_at:
                return self._value
            if self._refused is not None:
                # A copy for each caller: threads raising one object would share
                # (and keep lengthening) its traceback.
                raise copy.copy(self._refused) from None
            try:
                token = fetch()
            except AuthError as err:
                self._refused = err
                raise
            self._value = token.value
            sent_at = now if token.sent_at is None else token.sent_at
            self._refresh_at = self._renewal.due(token.expires_in, sent_at, self._clock())
            with self._issued_lock:
                self._issued.append(token.value)
            return token.value

    def invalidate(self, stale: str) -> None:
        """Forget ``stale`` (the server refused it), unless another thread already replaced it."""
        with self._lock:
            if self._value == stale:
                self._value = None

    def refusal(self) -> BaseException | None:
        """A copy of the error that refused the credentials, if they were refused."""
        with self._lock:
            return None if self._refused is None else copy.copy(self._refused)

    def issued(self) -> tuple[str, ...]:
        """The last few tokens handed out, for scrubbing error texts."""
        with self._issued_lock:
            return tuple(self._issued)

"""The client's sockets: a bounded answer, a deadline on every exchange, a way to cut them all.

requests applies its read timeout to each socket read: it bounds a silent server, not
one that trickles its answer a byte at a time, and nothing in requests stops a call in
flight from another thread. So every exchange registers here with its deadline; the
socket it uses is attached to it when the pool hands out a kept-alive connection or a
new one connects; and a watchdog thread shuts that socket down once the deadline
passes or the run is stopping. The blocked read returns at once, the exchange fails,
and :attr:`Exchange.cut` says why.

Answers are streamed and counted as they are decoded, so neither a huge body nor a
small compressed one that inflates to gigabytes is ever held in memory.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, NamedTuple
from urllib.parse import quote, quote_plus

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from archiver import __version__, httpsession

# The most one answer may hold once decoded. A full page of 1,000 attempts is a few
# hundred kilobytes; anything past this is a server gone wrong, not data.
MAX_ANSWER_BYTES = 10 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
# How often the watchdog looks for exchanges past their deadline or to abandon.
TICK_SECONDS = 0.1

Cut = Literal["deadline", "stopped"]

# The exchange the current thread is making, for the pool to attach its connection to.
_current = threading.local()


class Exchange:
    """One HTTP exchange in flight: its deadline, its socket, and why it was cut."""

    __slots__ = ("cleanup", "cut", "deadline", "sock")

    def __init__(self, deadline: float, cleanup: bool) -> None:
        self.deadline = deadline
        self.cleanup = cleanup  # still allowed once the run is stopping (see Exchanges.stop)
        # Kept here, not read from the connection: http.client hands a socket to the
        # response (and forgets it) when the server says it will close the connection.
        self.sock: socket.socket | None = None
        self.cut: Cut | None = None


# Once the run is stopping, the calls that undo its changes (resuming a paused
# campaign, restarting skills) still go, but no later than this after the first stop.
STOP_GRACE_SECONDS = 5.0


class Exchanges:
    """The exchanges in flight on one client, watched by one daemon thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: set[Exchange] = set()
        self._owner: dict[int, Exchange] = {}  # id(socket) -> the exchange using it
        # 0 running; 1 stopping (cleanup calls still go); 2 stopping at once. Written only
        # by stop(), which a signal handler calls: no lock, so it can never deadlock.
        self.stopping = 0
        self.stopped_at: float | None = None  # time.monotonic() of the first stop
        self._closed = threading.Event()
        self._watchdog: threading.Thread | None = None

    def stop(self) -> None:
        """Abandon the exchanges in flight; a second call abandons cleanup exchanges too."""
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
        self.stopping = min(2, self.stopping + 1)

    def grace_left(self) -> float:
        """Seconds left for cleanup calls: STOP_GRACE_SECONDS from the first stop, less
        what has passed since (infinite before a stop, 0 once past it)."""
        if self.stopped_at is None:
            return float("inf")
        return max(0.0, self.stopped_at + STOP_GRACE_SECONDS - time.monotonic())

    def abandons(self, cleanup: bool) -> bool:
        """Whether an exchange of this kind is abandoned (or never started) now."""
        return self.stopping >= (2 if cleanup else 1)

    @contextmanager
    def track(self, deadline: float, *, cleanup: bool = False) -> Iterator[Exchange]:
        """Register the current thread's exchange for the watchdog while it runs."""
        exchange = Exchange(deadline, cleanup)
        with self._lock:
            self._active.add(exchange)
            if self._watchdog is None and not self._closed.is_set():
                self._watchdog = threading.Thread(
                    target=self._watch, name="http-watchdog", daemon=True
                )
                self._watchdog.start()
        _current.exchange = exchange
        try:
            yield exchange
        finally:
            _current.exchange = None
            with self._lock:
                self._active.discard(exchange)
                if exchange.sock is not None and self._owner.get(id(exchange.sock)) is exchange:
                    del self._owner[id(exchange.sock)]

    def attach(self, sock: object) -> None:
        """The current thread's exchange now uses ``sock`` (a pooled or a new connection's)."""
        exchange: Exchange | None = getattr(_current, "exchange", None)
        if exchange is None or not isinstance(sock, socket.socket):
            return
        with self._lock:
            if exchange.sock is not None and self._owner.get(id(exchange.sock)) is exchange:
                del self._owner[id(exchange.sock)]
            exchange.sock = sock
            self._owner[id(sock)] = exchange

    def close(self) -> None:
        self._closed.set()
        watchdog = self._watchdog
        if watchdog is not None and watchdog is not threading.current_thread():
            watchdog.join(timeout=1)

    def _watch(self) -> None:
        while not self._closed.wait(TICK_SECONDS):
            self.sweep(time.monotonic())

    def sweep(self, now: float) -> None:
        """Cut every exchange past its deadline or abandoned; again on every tick, since a
        connection opened after the first cut has a socket only once it is connected."""
        with self._lock:
            for exchange in self._active:
                if exchange.cut is None:
                    if self.abandons(exchange.cleanup):
                        exchange.cut = "stopped"
                    elif now >= exchange.deadline:
                        exchange.cut = "deadline"
                sock = exchange.sock
                if exchange.cut is None or sock is None:
                    continue
                if self._owner.get(id(sock)) is exchange:
                    _shut(sock)


def _shut(sock: socket.socket) -> None:
    # Already closed: nothing left to cut.
    with contextlib.suppress(OSError):
        # The plain socket's shutdown, also for TLS: SSLSocket's own would drop its TLS
        # state under the thread still reading, which then fails with an unrelated error.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


# Failures of the transport itself (both backends' clients); anything else requests
# raises is a local fault.
TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


# What an operating system error means to a person, for "cannot reach HOST: ...".
_UNREACHABLE = {
    errno.ECONNREFUSED: "connection refused",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
}
_NAME_NOT_FOUND = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


# What an error message quotes of a cause or a server's answer, at most.
MAX_CAUSE_CHARS = 200
REDACTED = "***"
STOPPING = "the run is stopping; the call was abandoned (a later run finishes it)"


def truncate(text: str, limit: int = MAX_CAUSE_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret, as sent or URL-encoded, replaced by ``***``. Scrub
    before truncating, so no prefix of a secret survives the cut."""
    for secret in secrets:
        if secret:
            for form in {secret, quote_plus(secret), quote(secret, safe="")}:
                text = text.replace(form, REDACTED)
    return text


def causes(err: BaseException) -> list[BaseException]:
    """``err`` and what it wraps (requests and urllib3 nest the real failure deeply)."""
    seen: list[BaseException] = []
    todo: list[object] = [err]
    while todo and len(seen) < 12:
        current = todo.pop(0)
        if not isinstance(current, BaseException) or any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend((current.__cause__, current.__context__, getattr(current, "reason", None)))
        todo.extend(current.args[:1])
    return seen


def unreachable_cause(err: BaseException) -> str | None:
    """Why no connection could be made at all, in words; None for other failures."""
    for cause in causes(err):
        if isinstance(cause, socket.gaierror):
            if cause.errno in _NAME_NOT_FOUND:
                return "name not found"
            return f"name lookup failed ({cause.strerror or cause})"
        if isinstance(cause, OSError) and cause.errno in _UNREACHABLE:
            return _UNREACHABLE[cause.errno]
    return None


def broken_cause(err: BaseException) -> str:
    """What went wrong with an established exchange, in words."""
    for cause in causes(err):
        if isinstance(cause, http.client.RemoteDisconnected):
            return "the server closed the connection without answering"
        if isinstance(cause, http.client.IncompleteRead):
            return "the answer was cut off before its end"
        if isinstance(cause, ConnectionResetError):
            return "the server reset the connection"
    for cause in reversed(causes(err)):
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
    return str(err)


def tls_failure(err: BaseException) -> str:
    """What a failed TLS handshake means to a person, from the ``ssl`` error under
    requests' and urllib3's wrappers (their text is a repr of pools and retries)."""
    found = next((c for c in causes(err) if isinstance(c, ssl.SSLError)), None)
    if isinstance(found, ssl.SSLCertVerificationError):
        why = found.verify_message or "certificate verify failed"
        return (f"the server's certificate was not accepted ({why}); if a private CA or "
                "an inspecting proxy signs it, set REQUESTS_CA_BUNDLE to that CA's certificate")
    if found is not None and found.reason == "WRONG_VERSION_NUMBER":
        return "the server did not answer in TLS (is the URL https:// for a plain HTTP server?)"
    if found is not None and found.reason:
        return f"the handshake failed ({found.reason.lower().replace('_', ' ')})"
    return "the handshake failed"


class Body(NamedTuple):
    """An answer's body as read: ``content`` None when it grew past the limit (reading
    stopped); ``undecodable`` (and ``content`` empty) when it is not in its
    Content-Encoding. The server answered either way: its status stands. A 2xx so
    read is an answer not read, never a lost connection to try again: the call may
    have done what it was for."""

    content: bytes | None
    undecodable: bool = False


def read_body(response: requests.Response, limit: int = MAX_ANSWER_BYTES) -> Body:
    """The decoded body, read no further than ``limit`` bytes (see :class:`Body`)."""
    parts: list[bytes] = []
    size = 0
    try:
        # urllib3 inflates at most the chunk size per read: a compressed bomb never
        # expands further than one chunk past the limit.
        for chunk in response.iter_content(CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                return Body(None)
            parts.append(chunk)
    except requests.exceptions.ContentDecodingError:
        return Body(b"", undecodable=True)
    return Body(b"".join(parts))


def undecodable_cause(encoding: str) -> str:
    """Why a 2xx answer whose body is not in its ``Content-Encoding`` was not read."""
    return f"answer cannot be decoded from Content-Encoding {truncate(encoding)}"


def _tracking(pool_cls: type[HTTPConnectionPool], exchanges: Exchanges) -> type[HTTPConnectionPool]:
    """``pool_cls`` whose connections attach their socket to the exchange using them."""

    class Connected(pool_cls.ConnectionCls):  # type: ignore[name-defined,misc]
        def connect(self) -> None:
            super().connect()
            exchanges.attach(self.sock)

    class Tracked(pool_cls):  # type: ignore[valid-type,misc]
        ConnectionCls = Connected

        def _get_conn(self, timeout: float | None = None) -> Any:
            conn = super()._get_conn(timeout)
            exchanges.attach(conn.sock)  # None for a new one: attached once it connects
            return conn

    return Tracked


class _Adapter(HTTPAdapter):
    """A pool whose connections are attached to the exchange that uses them."""

    def __init__(self, exchanges: Exchanges, pool_size: int) -> None:
        self._pools = {
            "http": _tracking(HTTPConnectionPool, exchanges),
            "https": _tracking(HTTPSConnectionPool, exchanges),
        }
        # One keep-alive pool with a connection per worker; retrying is ours, not urllib3's.
        super().__init__(pool_connections=1, pool_maxsize=pool_size, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = self._pools
        return manager


def session(pool_size: int, exchanges: Exchanges) -> requests.Session:
    """A keep-alive session whose exchanges ``exchanges`` can cut (archiver.httpsession:
    the proxy environment, never netrc; loopback never proxied)."""
    http = httpsession.Session()
    adapter = _Adapter(exchanges, pool_size)
    http.mount("https://", adapter)
    http.mount("http://", adapter)
    http.headers.update({"Accept": "application/json", "User-Agent": f"archiver/{__version__}"})
    return http

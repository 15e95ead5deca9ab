"""The one exception tree of archiver.

Every error raised on purpose derives from :class:`ArchiverError`. The CLI turns
them into a one-line message (and its ``details``, a line each) and an exit code in
exactly one place (``archiver.cli``). Retry decisions ask ``isinstance(err, Transient)`` instead of
matching status codes across the code base.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Self

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STORAGE = 74  # EX_IOERR: a state, audit, report or metrics file cannot be written
EXIT_LOCKED = 75  # EX_TEMPFAIL: another run holds the state store (or the audit log, too long)
EXIT_UNAPPROVED = 77  # EX_NOPERM: the policy text has no valid approval for a real tenant
EXIT_CONFIG = 78  # EX_CONFIG: invalid policy or missing secret
EXIT_INTERRUPTED = 130  # a shell's code for a process stopped by SIGINT (outside a run)


class Transient:
    """Marker: the operation may succeed if tried again later."""


class Terminal:
    """Marker: trying again will not help."""


class ArchiverError(Exception):
    """Base of every error archiver raises on purpose."""

    exit_code: int = EXIT_FAILED
    # Lines shown under the message, one each (a line break inside the message itself
    # is shown escaped: it may come from a server or a file).
    details: tuple[str, ...] = ()

    def with_details(self, lines: Iterable[str]) -> Self:
        self.details = tuple(lines)
        return self


class UsageError(ArchiverError):
    """The command line was wrong."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in a policy file, pointing at its line and column (1-based)."""

    file: str
    line: int
    col: int
    code: str
    message: str

    def format(self) -> str:
        """One line: the file and message quote policy text, whose control characters
        (a newline, a terminal escape in a key or value) are shown escaped."""
        from archiver.report.redact import printable

        return printable(f"{self.file}:{self.line}:{self.col}: {self.code} {self.message}")


class PolicyError(ArchiverError, Terminal):
    """A policy is invalid; carries every diagnostic found in one pass."""

    exit_code = EXIT_CONFIG

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(d.format() for d in diagnostics))


class ConfigError(ArchiverError, Terminal):
    """Configuration outside the policy (environment, secrets, paths) is missing or wrong."""

    exit_code = EXIT_CONFIG


class TemplateError(ArchiverError, Terminal):
    """A payload template failed to compile or render, or rendered invalid JSON."""

    exit_code = EXIT_CONFIG

    def __init__(self, template: str, line: int | None, message: str) -> None:
        self.template = template
        self.line = line
        where = f"{template}:{line}" if line else template
        super().__init__(f"{where}: {message}")


class NotApproved(ArchiverError, Terminal):
    """A run against a real tenant was refused: the policy's SHA-256 has no valid approval."""

    exit_code = EXIT_UNAPPROVED


class PluginError(ArchiverError, Terminal):
    """A third-party stage plugin could not be loaded or built, or is not a valid stage:
    configuration, found before any request."""

    exit_code = EXIT_CONFIG


class StageFailed(ArchiverError, Terminal):
    """A third-party stage raised while deciding or shaping (not one of archiver's errors):
    its campaign stops, named with the stage."""


class StageDeliveryFailed(ArchiverError, Transient):
    """A third-party sink raised while delivering: the event is kept for a later run."""


class StateError(ArchiverError, Terminal):
    """The state store is unusable (corrupt, newer schema, unreadable)."""


class StateLockedError(StateError):
    """Another archiver run holds the state store."""

    exit_code = EXIT_LOCKED


class StorageError(ArchiverError, Terminal):
    """A file or folder archiver keeps (state store, run lock, audit log, report, metrics)
    cannot be created, read or written: disk full, read-only, no permission."""

    exit_code = EXIT_STORAGE


class UnsafeFileError(ConfigError):
    """A state folder or file, or an audit log, is not provably archiver's own (a symbolic
    link, not a regular file, another user's, not an audit log it wrote): refused, untouched."""


class AuditError(ArchiverError, Terminal):
    """The audit log cannot be written or its chain is broken."""


class AuditLockedError(AuditError):
    """Another process has held the audit log's lock too long: a temporary condition, so
    the exit code a scheduler retries on, as for a state folder another run holds."""

    exit_code = EXIT_LOCKED


class CampaignAborted(ArchiverError, Terminal):
    """A campaign was stopped before anything of it was archived (for example on_violation: abort)."""

    def __init__(self, campaign_id: str, reason: str) -> None:
        self.campaign_id = campaign_id
        self.reason = reason
        super().__init__(f"campaign {campaign_id}: {reason}")


class ApiError(ArchiverError):
    """The CXone API (or the network in front of it) answered with an error."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        campaign_id: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.status = status
        self.campaign_id = campaign_id
        self.endpoint = endpoint
        self.message = message  # without the campaign, status and endpoint before it
        prefix = f"campaign {campaign_id}: " if campaign_id else ""
        code = f"HTTP {status} " if status is not None else ""
        where = f"from {endpoint}: " if endpoint else ""
        super().__init__(f"{prefix}{code}{where}{message}")


class TransientApiError(ApiError, Transient):
    """An API error worth retrying (429, 5xx, connection failure, timeout);
    ``retry_after`` seconds if the server said when to come back."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)  # type: ignore[arg-type]


class RateLimited(TransientApiError):
    """429: the tenant's rate limit was hit."""


class ServerError(TransientApiError):
    """5xx: the server failed."""


class NetworkError(TransientApiError):
    """The connection failed or a response did not arrive in time."""


class Unreachable(NetworkError):
    """The host could not be reached at all (connection refused, name not found)."""


class AnswerLost(TransientApiError):
    """A call that changes the tenant (an archive call) went out and may have taken
    effect, but no answer saying what it did came back: a 5xx, a timeout, a connection
    cut once the request was sent. It is not sent again blind: an API that does not keep
    idempotency keys would apply it twice. The engine looks at the listing first (an
    attempt gone from it was archived by this call) and sends again only what is still
    listed."""


class CallAbandoned(TransientApiError):
    """The run is stopping (SIGINT/SIGTERM): the call was not sent, or was cut off in flight.

    Transient because its outcome is unknown: a later run finds out (an archive batch
    stays open and is reconciled). It is never retried within the stopping run.
    """


class TerminalApiError(ApiError, Terminal):
    """An API error that retrying will not fix (400, 403, 404, bad credentials)."""


class UnreadableAnswer(TerminalApiError):
    """A 2xx answer of a call that changes the tenant whose body cannot be read (not
    JSON, not the answer's shape, or too large to read): the call was accepted, and what
    it did is unknown."""


def unread_kind(acts: bool, status: int) -> type[TerminalApiError]:
    """The error for an answer not read: ``UnreadableAnswer`` when it is the 2xx of a
    call that changes the tenant (accepted, what it did is unknown), else a refusal."""
    return UnreadableAnswer if acts and 200 <= status < 300 else TerminalApiError


class AuthError(TerminalApiError):
    """Credentials were refused (invalid client, or 401 after a fresh token)."""

    exit_code = EXIT_CONFIG


class CampaignActive(ApiError, Terminal):
    """409: the campaign is actively dialing and refuses the change."""


def is_transient(err: BaseException) -> bool:
    """True when ``err`` is marked as worth retrying."""
    return isinstance(err, Transient)


class WebhookError(ArchiverError, Transient):
    """A webhook delivery failed; the event stays in the outbox for a later try."""


class WebhookGone(ArchiverError, Terminal):
    """The webhook endpoint answered 410 Gone; it is disabled and the events are kept."""

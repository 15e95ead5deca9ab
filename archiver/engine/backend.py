"""The one interface between the engine and an API it archives through.

The engine, the stages, the state store and the review tools know a backend only
through these types. A backend (the tutorial's `campaign-archive` contract, NICE
CXone's published API) keeps its own wire format, auth and paging in its own
package and maps its records to :class:`AttemptRecord`; nothing here imports a
backend.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, Protocol

# Record fields a filter or transform may read. A backend says which it provides;
# a policy whose stages read one it lacks is refused by validation.
RecordField = Literal[
    "outcome", "disposition", "duration", "anonymized", "retention_days", "updated_at",
    "contact_id",
]


# A record's handle when its backend needs none: shared, and read-only.
NO_HANDLE: Mapping[str, str] = MappingProxyType({})


class AttemptRecord(NamedTuple):
    """A listed attempt, as the stages read it, whatever backend listed it.

    A field the backend does not provide is None; a stage that reads it is refused
    at validation, so None here never stands for a default. Immutable (a named
    tuple: a million of them are built per million listed attempts, and a tuple is
    built in half the time of a frozen dataclass).
    """

    id: str
    contact_id: str
    outcome: str
    disposition: str | None = None
    duration: int | None = None
    anonymized: bool | None = None
    retention_days: int | None = None
    updated_at: str | None = None  # ISO-8601 UTC, for listings paged from a watermark
    # What the backend needs to act on the attempt later (e.g. a calling list's
    # externalId); kept in the state store with the decision. Read-only (a backend gives
    # a MappingProxyType), so no stage can change what the attempt is acted on by.
    handle: Mapping[str, str] = NO_HANDLE

    @property
    def outcome_code(self) -> str:
        """The outcome under the name stage plugins written for the first backend read."""
        return self.outcome


@dataclass(frozen=True, slots=True)
class MalformedRecord:
    """A listed record that does not parse; it is quarantined with ``reason``.

    ``attempt_id`` is "" when the record has no usable id; ``digest`` (see
    :func:`content_digest`) then names it in the state store, by what it is rather
    than where it was listed (:mod:`archiver.engine.noid`).
    """

    attempt_id: str
    field: str
    reason: str
    digest: str = ""


def content_digest(raw: object) -> str:
    """The SHA-256 of a listed record's canonical JSON (keys sorted, no spaces, ASCII),
    in hex: the same for the same content, wherever and whenever it is listed, and
    nothing of the record readable in it."""
    try:
        text = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError):
        # Not a value a JSON listing parses to (keys of mixed types in a YAML fixture,
        # nesting past the encoder's depth): such records share one digest, and
        # copies of it are told apart by their order in the listing.
        text = f"(not JSON: {type(raw).__name__})"
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; ``watermark`` is where the next run may start listing from
    once every record up to here is decided (None for listings without one)."""

    records: Sequence[AttemptRecord | MalformedRecord]
    watermark: str | None = None


# "unknown": the backend cannot tell (an API that counts failures without naming them);
# the engine lists the campaign again after its batches, and what is still listed failed.
ItemOutcome = Literal["archived", "failed", "unknown"]


@dataclass(frozen=True, slots=True)
class ActResult:
    """What the backend did with one batch: a result per attempt id it was given.

    ``status`` and ``job_id`` are the backend's own words for the event templates.
    ``lost``: the call went out and its answer was lost (``AnswerLost``), so every
    outcome is "unknown". "answered": an error answer came (a 5xx other than a gateway
    timeout), so the server is done with the call; when the listing still holds every
    attempt of the batch it did not take effect, and the engine sends it again (same
    key). "unanswered": no answer (a timeout, a cut connection, a 504), so the server
    may still be at work on it; what is still listed waits, its batch open, for the
    next run.
    """

    outcomes: Mapping[str, tuple[ItemOutcome, str]]  # attempt id -> (outcome, reason)
    status: str
    job_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    lost: Literal["answered", "unanswered"] | None = None


class Backend(Protocol):
    """An API archiver acts through; safe to share between the threads of a run."""

    name: str  # the policy's connection.api
    fields: frozenset[RecordField]  # the record fields its listings provide
    # Whether ``dialing`` answers before any ``act`` (a read-only look, as ``plan`` takes);
    # False: the API tells only by refusing an act (CampaignActive).
    reports_dialing: bool

    def pages(self, campaign_id: str, *, since: str | None) -> Iterator[Page]:
        """The campaign's completed attempts, page by page, from ``since`` (a watermark)
        or from the start."""
        ...

    def act(
        self, campaign_id: str, batch: Sequence[AttemptRecord], *, idempotency_key: str
    ) -> ActResult:
        """Archive (or export, or retire) one batch; every try carries the same key.

        Each record's ``retention_days`` is the retention the policy decided for it.
        Raises :class:`archiver.errors.CampaignActive` when the API refuses because the
        campaign is dialing (the engine then asks ``dialing`` and follows on_active)."""
        ...

    def whole_contacts(self, campaign_id: str) -> bool:
        """True when acting on an attempt acts on every attempt of its contact (cxone
        ``retire`` removes the prospect, and its attempts leave the listing with it): the
        engine then never splits a contact's attempts between batches, so the batch that
        takes a contact away holds all of them, and a run killed after it loses none."""
        ...

    def dialing(self, campaign_id: str) -> Mapping[str, Any] | None:
        """What of the campaign is dialing now (e.g. its running skills), as JSON values;
        None when nothing is, or when the backend learns it only from a refused ``act``
        (then it answers after that refusal). Changes nothing: the engine stores the
        answer before ``pause``, so a run killed in between still knows what to restart.
        The engine asks before a campaign's first ``act`` and after a CampaignActive."""
        ...

    def pause(self, campaign_id: str, dialing: Mapping[str, Any]) -> None:
        """Stop what ``dialing`` named."""
        ...

    def resume(self, campaign_id: str, dialing: Mapping[str, Any]) -> None:
        """Restart exactly what ``dialing`` named; safe to call again after a crash."""
        ...

    def cancel(self) -> None:
        """Stop: waits end and no new call starts (safe from a signal handler); the
        calls of ``resume`` may still go, once each."""
        ...

    def close(self) -> None: ...

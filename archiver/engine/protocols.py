"""The kinds of stage, as protocols. The engine knows stages only through these.

Listing is not a stage: the policy's backend (``archiver.engine.backend.Backend``)
lists records, and the stages read them as :class:`AttemptRecord`. A filter or
transform's type says which record fields it reads (``StageType.reads`` in
archiver.stages.descriptor), so a policy whose stages read a field its backend does
not provide is refused at validation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from archiver.engine.backend import AttemptRecord
from archiver.engine.records import Decision


@runtime_checkable
class Filter(Protocol):
    """Passes an attempt (returns None) or decides it (skip or quarantine).

    May raise :class:`archiver.errors.CampaignAborted` to stop the campaign.
    """

    name: str

    def check(self, attempt: AttemptRecord) -> Decision | None: ...


@runtime_checkable
class Transform(Protocol):
    """Refines an ``archive`` decision (e.g. sets its retention) or turns it into another."""

    name: str

    def apply(self, decision: Decision) -> Decision: ...


@runtime_checkable
class Sink(Protocol):
    """Receives one event per archive batch and per run start and end, through the outbox.

    ``render`` shapes the event when it is enqueued (in the same transaction as the
    batch result); ``deliver`` sends a stored body and raises a Transient error to keep
    it for a later attempt.
    """

    name: str
    events: frozenset[str]  # event kinds it receives: run_started, batch_archived, run_finished

    def render(self, event: Mapping[str, Any]) -> str: ...

    def deliver(self, event_id: str, body: str) -> str | None:
        """Deliver; may return a receipt (JSON text) that the outbox records with the event."""
        ...


@runtime_checkable
class ArchiveWriter(Protocol):
    """A sink that keeps the archived records themselves (the ``file`` sink).

    The engine hands it a batch's archived records in the step that records the
    batch, before the batch's event is written; what it returns (where, a digest,
    how many) goes into that event's ``files``, so the audit line vouches for it.
    Writing the same batch again must change nothing and return the same facts.

    A writer may also have ``discard_batch(campaign_id, batch_id) -> bool``: remove what
    a run that died before recording the batch wrote of it (nothing vouches for it),
    True when there was something. The engine calls it when the next run reconciles
    the batch instead of sending it again, and before it sends it again (the tenant
    may refuse the resend in whole or in part). It is optional, so a writer written
    without it is still a writer.
    """

    def write_batch(
        self, campaign_id: str, batch_id: str, records: Sequence[Mapping[str, Any]]
    ) -> Mapping[str, Any]: ...

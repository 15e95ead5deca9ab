"""The four kinds of stage, as protocols. The engine knows stages only through these."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from archiver.cxone.wire import Attempt
from archiver.engine.records import Decision

StageKind = Literal["source", "filter", "transform", "sink"]


@runtime_checkable
class Source(Protocol):
    """Yields pages of raw listed records of one campaign."""

    def pages(self, campaign_id: str) -> Iterator[Sequence[object]]: ...


@runtime_checkable
class Filter(Protocol):
    """Passes an attempt (returns None) or decides it (skip or quarantine).

    May raise :class:`archiver.errors.CampaignAborted` to stop the campaign.
    """

    name: str

    def check(self, attempt: Attempt) -> Decision | None: ...


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
class StagePlugin(Protocol):
    """What a third-party entry point in group ``archiver.stages`` must expose."""

    kind: StageKind

    def build(self, options: Mapping[str, Any]) -> Filter | Transform | Sink | Source: ...

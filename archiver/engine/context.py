"""What every part of a run shares: the policy, the state store, the backend, the sinks.

Its own module so the run (``runner``) and its campaigns (``campaign``) both import
it without importing each other.

An event a sink cannot render (its template fails on this event: a render bound, an
undefined name, output that is not plain JSON) does not stop what it reports from
being recorded: a batch's archive call was made, and its outcome is recorded all the
same, in the same transaction as its events. The sink's event is kept unrendered in
the outbox (its context, :mod:`archiver.state.events`), the sink delivers nothing past
it, and the run halts (``RunContext.halt``): it sends no further batch, and ends
recorded ``failed`` (exit 1) with a one-line reason naming the template, the event
kind and the sink. The next run first renders the kept events with the policy's
template as it is then (``render_kept``): once the template is fixed they take their
place in the outbox, in order, and the run goes on; while it still fails, the run
halts before its first batch. Nothing is archived twice, and no batch is missing from
an audit log.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from archiver import jsonsafe
from archiver.clock import now
from archiver.engine import failpoints, payloads
from archiver.engine.backend import AttemptRecord, Backend
from archiver.engine.budget import BatchBudget
from archiver.engine.observer import RunObserver
from archiver.engine.outbox import Outbox
from archiver.engine.protocols import ArchiveWriter, Filter, Sink, Transform
from archiver.errors import ArchiverError, StageFailed, TemplateError
from archiver.governance.holds import HoldSet
from archiver.policy.model import Policy
from archiver.state.attempts import PendingItem
from archiver.state.batches import StoredBatch
from archiver.state.conn import damaged
from archiver.state.events import UNRENDERED, Event
from archiver.state.store import Store
from archiver.target import Target

log = logging.getLogger(__name__)


Stages = tuple[list[Filter], list[Transform]]


class RunHalted(ArchiverError):
    """The run sends no further batch: an event could not be rendered (the reason)."""


@dataclass
class RunContext:
    run_id: str
    policy: Policy
    store: Store
    backend: Backend
    http: ThreadPoolExecutor
    outbox: Outbox
    sinks: Mapping[str, Sink]
    observer: RunObserver
    target: Target
    cancelled: threading.Event = field(default_factory=threading.Event)
    holds: HoldSet | None = None  # the policy's legal holds, when it lists any
    # The command's archive batches (run --max-batches), shared by all its policies.
    budget: BatchBudget = field(default_factory=BatchBudget)
    # Filters and transforms the command built before its first request, per campaign
    # (each campaign's own instances); a campaign missing here builds its own.
    stages: Mapping[str, Stages] = field(default_factory=dict)
    # Why the run sends no further batch: an event a sink could not render (``halt``).
    halted: str | None = None
    _halt_lock: threading.Lock = field(default_factory=threading.Lock)
    # Per campaign the run ended: its attempts by state and the reasons of those not
    # archived, read when it ended (``tally``).
    tallies: dict[str, tuple[dict[str, int], list[tuple[str, str, int]]]] = field(
        default_factory=dict)

    def tally(self, campaign_id: str) -> None:
        """Keep what the run recorded of a campaign it has ended, read while it still
        holds the campaign. Each attempt keeps only the last run that listed it, so once
        the run lets go, a run sharing the store that takes the campaign and lists it again
        takes its attempts (those still listed: skipped, quarantined, failed) from this
        run's counts in the store; the report counts what this run listed."""
        counts = self.store.attempts.counts(self.run_id, campaign_id).get(campaign_id, {})
        reasons = self.store.attempts.reasons(self.run_id, campaign_id).get(campaign_id, [])
        self.tallies[campaign_id] = (counts, reasons)

    def halt(self, reason: str) -> None:
        """The run sends no further batch; the first reason given is the run's."""
        with self._halt_lock:
            if self.halted is None:
                self.halted = reason
                log.error("%s", reason)

    def crash_point(self, name: str) -> None:
        failpoints.hit(name)

    @property
    def writers(self) -> list[ArchiveWriter]:
        """The sinks that keep the archived records themselves (``file``)."""
        return [s for s in self.sinks.values() if isinstance(s, ArchiveWriter)]

    def events(self, event_id: str, context: Mapping[str, Any]) -> list[Event]:
        """Render an event for every sink that wants it: (event_id, sink, kind, body).

        A sink that cannot render it gets it kept unrendered (its context, status
        UNRENDERED) and the run halts (the module's docstring): this never raises for a
        render, so what the event reports is recorded whatever the templates do."""
        kind = str(context["event"])
        out: list[Event] = []
        for key, sink in self.sinks.items():
            if kind not in sink.events:
                continue
            try:
                out.append((event_id, key, kind, render_body(sink, context)))
            except (TemplateError, StageFailed) as err:
                self.halt(not_rendered(err, kind, key))
                out.append((event_id, key, kind, kept_context(context), UNRENDERED))
        return out

    def render_kept(self) -> None:
        """Render the events an earlier run kept unrendered, in order, with the sinks'
        templates as they are now; each one rendered takes its place in the outbox. The
        first that still fails halts the run (before its first batch)."""
        for event in self.store.events.unrendered(list(self.sinks)):
            sink = self.sinks[event.sink]
            try:
                body = render_body(sink, json.loads(event.body))
            except (TemplateError, StageFailed) as err:
                self.halt(not_rendered(err, event.kind, event.sink, kept=True))
                return
            self.store.events.rendered(event.seq, body)
            log.info("outbox: the %s event %s of %s is rendered now", event.kind,
                     event.event_id, event.sink)

    def batch_events(
        self,
        batch: StoredBatch,
        items: Sequence[PendingItem],
        status: str | None,
        job_id: str | None,
    ) -> list[Event]:
        """The events of a batch whose archived attempts are ``items``. The ``file`` sinks
        write the records first (a batch already written is found, not written again),
        and what they wrote goes into the event, so the audit line vouches for it."""
        files = []
        writers = self.writers
        if items and writers:
            records = [file_record(self.backend, item) for item in items]
            try:
                files = [w.write_batch(batch.campaign_id, batch.id, records) for w in writers]
            except TemplateError as err:
                # The archive file is what the batch's event vouches for: without it the
                # batch is not recorded. It stays open, as after a crash: the next run
                # reconciles it with the listing (or resends it with its key) and writes it.
                reason = (
                    f"{err} (a line of batch {batch.id}'s archive file could not be "
                    "rendered: the batch is left open for the next run to reconcile; no "
                    "further batch is sent; fix the template and run again)"
                )
                self.halt(reason)
                raise RunHalted(reason) from None
        context = payloads.batch_event(
            run_id=self.run_id, policy=self.policy, batch=batch, lines=items, status=status,
            job_id=job_id, timestamp=now(), target=self.target.as_dict(), files=files,
        )
        return self.events(str(context["event_id"]), context)


def render_body(sink: Sink, context: Mapping[str, Any]) -> str:
    """The sink's body for ``context``; StageFailed when it is not text the outbox can
    store (a sink of a plugin may return anything)."""
    body = sink.render(context)
    if not isinstance(body, str):
        raise StageFailed(f"sink {sink.name!r} rendered a {type(body).__name__}, not text")
    try:
        body.encode("utf-8")
    except UnicodeEncodeError as err:
        raise StageFailed(
            f"sink {sink.name!r} rendered text UTF-8 cannot hold ({err.reason})"
        ) from None
    return body


def kept_context(context: Mapping[str, Any]) -> str:
    """An event's context as an unrendered event keeps it (ASCII: any string fits)."""
    return json.dumps(context, separators=(",", ":"), ensure_ascii=True)


def not_rendered(err: Exception, kind: str, sink: str, *, kept: bool = False) -> str:
    """One line: what failed to render which event for which sink, and what happens."""
    what = (
        "kept from an earlier run, still fails to render" if kept
        else "could not be rendered"
    )
    return (
        f"{err} (a {kind} event for sink {sink} {what}: what it reports is recorded, the "
        "event is kept unrendered and the sink delivers nothing past it; no further batch "
        "is sent; fix the template and run again)"
    )


def as_record(item: PendingItem, where: str) -> AttemptRecord:
    """A stored attempt as the backend acts on it: ``retention_days`` is the decided one.
    ``where``: the state store it was read from, named when a value is not what archiver
    stored there (SQLite keeps whatever is written, a blob in a text column say)."""
    problem = item.damage()
    if problem:
        raise damaged(where, problem)
    handle: Any = {}
    if item.handle:
        try:
            handle = jsonsafe.loads(item.handle)
        except (ValueError, TypeError):
            handle = None
        if not isinstance(handle, dict):
            raise damaged(where, f"what attempt {item.attempt_id} keeps for its backend "
                                 "(attempts.handle) is not a JSON object")
    return AttemptRecord(
        id=item.attempt_id,
        contact_id=item.contact_id,
        outcome=item.outcome,
        disposition=item.disposition,
        duration=item.duration,
        anonymized=item.anonymized,
        retention_days=item.retention_days,
        updated_at=item.updated_at,
        handle=handle,
    )


# Record fields a file line may carry, in this order, when the backend provides them.
_FILE_FIELDS = ("outcome", "disposition", "duration", "updated_at", "anonymized")


def file_record(backend: Backend, item: PendingItem) -> dict[str, Any]:
    """What the archive on disk keeps of an attempt: its id, its contact, the fields its
    backend lists (a field the backend has not, such as ``anonymized`` on cxone, is left
    out: the archive claims nothing that was not listed) and its decided retention."""
    record: dict[str, Any] = {"id": item.attempt_id, "contact_id": item.contact_id}
    for name in _FILE_FIELDS:
        if name in backend.fields:
            record[name] = getattr(item, name)
    record["retention_days"] = item.retention_days
    return record

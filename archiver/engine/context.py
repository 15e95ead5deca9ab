"""What every part of a run shares: the policy, the state store, the backend, the sinks.

Its own module so the run (``runner``) and its campaigns (``campaign``) both import
it without importing each other.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from archiver.clock import now
from archiver.engine import failpoints, payloads
from archiver.engine.backend import AttemptRecord, Backend
from archiver.engine.budget import BatchBudget
from archiver.engine.observer import RunObserver
from archiver.engine.outbox import Outbox
from archiver.engine.protocols import ArchiveWriter, Filter, Sink, Transform
from archiver.governance.holds import HoldSet
from archiver.policy.model import Policy
from archiver.state.attempts import PendingItem
from archiver.state.batches import StoredBatch
from archiver.state.store import Store
from archiver.target import Target

# (event_id, sink, kind, body), as the outbox stores them.
Event = tuple[str, str, str, str]


Stages = tuple[list[Filter], list[Transform]]


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

    def crash_point(self, name: str) -> None:
        failpoints.hit(name)

    @property
    def writers(self) -> list[ArchiveWriter]:
        """The sinks that keep the archived records themselves (``file``)."""
        return [s for s in self.sinks.values() if isinstance(s, ArchiveWriter)]

    def events(self, event_id: str, context: Mapping[str, Any]) -> list[Event]:
        """Render an event for every sink that wants it: (event_id, sink, kind, body)."""
        kind = str(context["event"])
        return [
            (event_id, key, kind, sink.render(context))
            for key, sink in self.sinks.items()
            if kind in sink.events
        ]

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
            files = [w.write_batch(batch.campaign_id, batch.id, records) for w in writers]
        context = payloads.batch_event(
            run_id=self.run_id, policy=self.policy, batch=batch, lines=items, status=status,
            job_id=job_id, timestamp=now(), target=self.target.as_dict(), files=files,
        )
        return self.events(str(context["event_id"]), context)


def as_record(item: PendingItem) -> AttemptRecord:
    """A stored attempt as the backend acts on it: ``retention_days`` is the decided one."""
    return AttemptRecord(
        id=item.attempt_id,
        contact_id=item.contact_id,
        outcome=item.outcome,
        disposition=item.disposition,
        duration=item.duration,
        anonymized=item.anonymized,
        retention_days=item.retention_days,
        updated_at=item.updated_at,
        handle=json.loads(item.handle) if item.handle else {},
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

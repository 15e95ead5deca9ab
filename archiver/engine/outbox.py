"""Delivers the outbox: every sink event written in the state store, in order, at least once.

An event that cannot be delivered now stays pending for a later run; a sink
that answers "gone" (webhook 410) is disabled and its events are kept and
reported, never dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from archiver.engine import failpoints
from archiver.engine.protocols import Sink
from archiver.errors import ArchiverError, Transient, WebhookGone
from archiver.state.store import Store

log = logging.getLogger(__name__)

DELIVERY_TRIES = 3
DELIVERY_BACKOFF_SECONDS = 0.25


class Outbox:
    def __init__(self, store: Store, sinks: Mapping[str, Sink]) -> None:
        self.store = store
        self.sinks = dict(sinks)
        self._lock = threading.Lock()
        self._broken: set[str] = set()  # sinks that failed in this run: retried next run
        for sink in self.sinks.values():
            attach = getattr(sink, "attach_store", None)
            if attach is not None:  # a sink with a file of its own (audit_log) asks the store
                attach(store)

    def drain(self, *, wait: bool = True) -> None:
        """Deliver pending events of every sink. ``wait=False`` returns at once when
        another thread is already delivering (it will pick ours up)."""
        if not self._lock.acquire(blocking=wait):
            return
        try:
            for key, sink in self.sinks.items():
                if key not in self._broken:
                    self._drain_sink(key, sink)
        finally:
            self._lock.release()

    def _deliver(self, sink: Sink, event_id: str, body: str) -> str | None:
        """A few quick tries with backoff; what still fails waits for the next run."""
        for attempt in range(DELIVERY_TRIES):
            try:
                return sink.deliver(event_id, body)
            except ArchiverError as err:
                if not isinstance(err, Transient) or attempt == DELIVERY_TRIES - 1:
                    raise
                time.sleep(DELIVERY_BACKOFF_SECONDS * 2**attempt)
        return None  # pragma: no cover - the loop returns or raises

    def _drain_sink(self, key: str, sink: Sink) -> None:
        while True:
            events = self.store.pending_events(key)
            if not events:
                return
            for event in events:
                failpoints.hit("event_delivering")
                try:
                    receipt = self._deliver(sink, event.event_id, event.body)
                except WebhookGone as err:
                    # The endpoint is gone for every event, not only this one: the sink
                    # stops for the run, its other events kept for a later one.
                    log.error("sink %s disabled: %s", key, err)
                    self.store.event_failed(event.seq, str(err), disable=True)
                    self._broken.add(key)
                    return
                except ArchiverError as err:
                    if not isinstance(err, Transient):
                        raise
                    # Order matters (the audit chain): stop this sink for the run.
                    log.warning("sink %s: delivery failed, kept for a later try: %s", key, err)
                    self.store.event_failed(event.seq, str(err))
                    self._broken.add(key)
                    return
                failpoints.hit("event_delivered")
                self.store.event_delivered(event.seq, receipt)

"""Delivers the outbox: every sink event written in the state store, in order, at least once.

An event that cannot be delivered now stays pending for a later run; a sink
that answers "gone" (webhook 410) is disabled and its events are kept and
reported, never dropped.

Events name their sink by what it delivers to (``runner.sink_keys``), so a
pending event goes to the destination it was written for or nowhere: a run
refuses to start while the outbox holds events for a sink its policy no longer
has (``claim_sinks``), and says how to deliver or drop them.
"""

from __future__ import annotations

import logging
import re
import shlex
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TypeVar

from archiver.engine import failpoints
from archiver.engine.protocols import Sink
from archiver.errors import ArchiverError, ConfigError, Transient, WebhookGone
from archiver.state import location
from archiver.state.events import OutboxEvent
from archiver.state.location import StateLocation
from archiver.state.store import Store

log = logging.getLogger(__name__)

DELIVERY_TRIES = 3
DELIVERY_BACKOFF_SECONDS = 0.25
T = TypeVar("T")


class Outbox:
    def __init__(self, store: Store, sinks: Mapping[str, Sink]) -> None:
        self.store = store
        self.sinks = dict(sinks)
        # One deliverer per sink keeps each sink's order; different sinks (a webhook's
        # round trips, an audit log's fsyncs) deliver side by side.
        self._locks = {key: threading.Lock() for key in self.sinks}
        self._broken: set[str] = set()  # sinks that failed in this run: retried next run
        for sink in self.sinks.values():
            attach = getattr(sink, "attach_store", None)
            if attach is not None:  # a sink with a file of its own (audit_log) asks the store
                attach(store)
        store.own_sinks(self.sinks)  # a store runs share: our events are no one's orphans

    def drain(self, *, wait: bool = True) -> None:
        """Deliver pending events of every sink. ``wait=False`` skips a sink another
        thread is already delivering (it will pick ours up)."""
        for key, sink in self.sinks.items():
            lock = self._locks[key]
            if key in self._broken or not lock.acquire(blocking=wait):
                continue
            try:
                # A store runs share: one run at a time delivers a sink, all its events.
                with self.store.delivering(key, wait=wait) as alone:
                    if alone and key not in self._broken:
                        self._drain_sink(key, sink)
            finally:
                lock.release()

    def _deliver(self, send: Callable[[], T]) -> T:
        """A few quick tries with backoff; what still fails waits for the next run."""
        for attempt in range(DELIVERY_TRIES):
            try:
                return send()
            except ArchiverError as err:
                if not isinstance(err, Transient) or attempt == DELIVERY_TRIES - 1:
                    raise
                time.sleep(DELIVERY_BACKOFF_SECONDS * 2**attempt)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _drain_sink(self, key: str, sink: Sink) -> None:
        many = getattr(sink, "deliver_many", None)
        while True:
            events = self.store.events.pending(key)
            if not events:
                return
            if many is not None:
                # A sink that takes a page of events at once (the audit log: one fsync).
                if not self._deliver_page(key, many, events):
                    return
                continue
            for event in events:
                failpoints.hit("event_delivering")
                try:
                    receipt = self._deliver(partial(sink.deliver, event.event_id, event.body))
                except WebhookGone as err:
                    # The endpoint is gone for every event, not only this one: the sink
                    # stops for the run, its other events kept for a later one.
                    log.error("sink %s disabled: %s", key, err)
                    self.store.events.failed(event.seq, str(err), disable=True)
                    self._broken.add(key)
                    return
                except ArchiverError as err:
                    if not isinstance(err, Transient):
                        raise
                    # Order matters (the audit chain): stop this sink for the run.
                    log.warning("sink %s: delivery failed, kept for a later try: %s", key, err)
                    self.store.events.failed(event.seq, str(err))
                    self._broken.add(key)
                    return
                failpoints.hit("event_delivered")
                self.store.events.delivered(event.seq, receipt)

    def _deliver_page(
        self, key: str, many: Callable[[Sequence[tuple[str, str]]], Sequence[str | None]],
        events: Sequence[OutboxEvent],
    ) -> bool:
        """Deliver ``events`` in one call and record them delivered in one transaction.
        False when the sink stopped for the run (its events kept, as one at a time)."""
        for _ in events:
            failpoints.hit("event_delivering")
        try:
            receipts = self._deliver(partial(many, [(e.event_id, e.body) for e in events]))
        except ArchiverError as err:
            if not isinstance(err, Transient):
                raise
            log.warning("sink %s: delivery failed, kept for a later try: %s", key, err)
            self.store.events.failed(events[0].seq, str(err))
            self._broken.add(key)
            return False
        for _ in events:
            failpoints.hit("event_delivered")
        self.store.events.delivered_many(
            [(event.seq, receipt) for event, receipt in zip(events, receipts, strict=True)]
        )
        return True


def sink_keys(sinks: list[Sink]) -> dict[str, Sink]:
    """Outbox names of sinks, in policy order: what each delivers to (its ``identity``: a
    webhook's URL, an audit log's file), so reordering or inserting sinks never sends a
    pending event elsewhere. A sink without one (a plugin may have none) is named by its
    type and its place among sinks of that type; a repeated name gets ``#2``, ``#3``."""
    keys: dict[str, Sink] = {}
    of_type: Counter[str] = Counter()
    for sink in sinks:
        identity = getattr(sink, "identity", None)
        base = identity if isinstance(identity, str) and identity else (
            f"{sink.name}:#{of_type[sink.name]}"
        )
        of_type[sink.name] += 1
        key, n = base, 1
        while key in keys:
            n += 1
            key = f"{base}#{n}"
        keys[key] = sink
    return keys


def check_sink_routes(state_dir: StateLocation, sinks: list[Sink]) -> None:
    """The outbox check of a run, made early (before its first request, the token's
    included): ConfigError when the store holds undelivered events for a sink the
    policy does not have. Changes nothing; the run migrates old names under its lock."""
    if not location.exists(state_dir):
        return
    store = Store(state_dir)
    try:
        claim_sinks(store, list(sink_keys(sinks)), [s.name for s in sinks], state_dir, migrate=False)
    finally:
        store.close()


# How stores written before sinks had identities named them: type and position.
_POSITIONAL = re.compile(r"(?P<kind>[^:#\s]+)#(?P<pos>\d+)")


def claim_sinks(
    store: Store, keys: Sequence[str], kinds: Sequence[str], state_dir: StateLocation, *,
    migrate: bool = True,
) -> None:
    """Every undelivered event must name a sink of the policy (``keys``, in policy order,
    with each sink's type in ``kinds``). Positional names of older stores are migrated
    where that is unambiguous (``migrate=False`` only checks that they could be);
    ConfigError, one line per sink, for events that would otherwise be orphaned."""
    targets = positional_targets(store, keys, kinds)
    if migrate:
        for old, new in targets.items():
            moved = store.events.rename_sink(old, new)
            log.info("outbox: %d event(s) of %s now named %s", moved, old, new)
    known = set(keys) | set(targets)
    undelivered = store.events.undelivered_by_sink()
    orphans = {sink: n for sink, n in undelivered.items() if sink not in known}
    if not orphans:
        return
    folder = shlex.quote(str(state_dir))
    lines = [
        f"the outbox in {state_dir} holds undelivered events for {len(orphans)} sink(s) this "
        "policy does not have; put the sink back in the policy to deliver them, or drop them "
        "(kept in the store, marked dropped):"
    ]
    lines += [
        f"  {sink}: {n} undelivered; drop: archiver runs outbox --state {folder} "
        f"--drop {shlex.quote(sink)}"
        for sink, n in orphans.items()
    ]
    raise ConfigError(lines[0]).with_details(lines[1:])


def positional_targets(store: Store, keys: Sequence[str], kinds: Sequence[str]) -> dict[str, str]:
    """The identity each ``TYPE#N`` outbox name (a store written before sinks had one)
    stands for, where that is certain: an audit log's receipts name its file; otherwise
    the policy's sink at position N has that type and is the only one of it, in the
    policy and in the store. Names left out are for ``claim_sinks`` to refuse."""
    old = {name: m for name in store.events.sinks() if (m := _POSITIONAL.fullmatch(name))}
    in_store = [m["kind"] for m in old.values()]
    targets: dict[str, str] = {}
    for name, m in old.items():
        kind, pos = m["kind"], int(m["pos"])
        paths = store.events.receipt_paths(name)
        if paths:
            named = {f"{kind}:{p}" for p in paths}
            if len(named) == 1 and named <= set(keys):
                targets[name] = named.pop()
        elif pos < len(keys) and kinds[pos] == kind and kinds.count(kind) == in_store.count(kind) == 1:
            targets[name] = keys[pos]
    return targets

"""One campaign of a run: list it completely, then archive it batch by batch.

Listing first is deliberate: the listing shrinks as attempts are archived, and
offset paging over a shrinking list skips records. Every decision is committed
to the state store before the first archive call, so memory does not grow with
the campaign and a crash loses nothing.

The archive protocol per batch: its composition and idempotency key are
committed, then it is POSTed, then its result, the attempts' final states and
the sink events are committed in one transaction. A batch found open at the
start of a run (sent, no recorded response) is reconciled with the fresh
listing: members gone from the listing were archived by it; if all members are
still listed it is resent with its original key.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from archiver.cxone import wire
from archiver.engine import payloads
from archiver.engine.pipeline import Pipeline
from archiver.engine.registry import BuildContext, build_pipeline_stages
from archiver.errors import (
    ApiError,
    ArchiverError,
    CampaignAborted,
    CampaignActive,
    Transient,
)
from archiver.policy.model import Campaign
from archiver.state.store import PendingItem, Store, StoredBatch, now

if TYPE_CHECKING:
    from archiver.engine.runner import RunContext

log = logging.getLogger(__name__)


class Interrupted(ArchiverError):
    """The run was asked to stop (SIGINT/SIGTERM)."""


class CampaignSkipped(ArchiverError):
    """The campaign is actively dialing and the policy says ``on_active: skip``."""


def composition_of(attempt_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(attempt_ids)).encode()).hexdigest()


def idempotency_key(campaign_id: str, composition: str) -> str:
    """A hash of the campaign id and the batch's sorted attempt ids, and nothing else: no
    run id, no counter of this store. Two state stores that form the same batch send the
    same key, so an API that replays keys answers the second as a replay."""
    digest = hashlib.sha256(f"{campaign_id}\n{composition}".encode()).hexdigest()
    return f"arc-{digest[:40]}"


def batch_id_of(key: str) -> str:
    """A batch's id follows from its key: the same batch has the same id in every store."""
    return key.removeprefix("arc-")[:20]


def next_batches(
    store: Store, run_id: str, campaign_id: str, max_items: int
) -> Iterator[tuple[StoredBatch, list[PendingItem]]]:
    """The campaign's archive-eligible attempts of this run, sorted by id and cut into
    chunks of ``max_items`` from the start; each is committed (composition and key)
    before anyone sends it, then yielded. Streams, so memory stays flat."""
    seq = store.max_batch_seq(run_id, campaign_id)
    after = ""
    while items := store.unbatched(run_id, campaign_id, after, max_items):
        after = items[-1].attempt_id
        seq += 1
        ids = [i.attempt_id for i in items]
        composition = composition_of(ids)
        key = idempotency_key(campaign_id, composition)
        batch = StoredBatch(
            id=batch_id_of(key),
            run_id=run_id,
            campaign_id=campaign_id,
            seq=seq,
            idempotency_key=key,
            size=len(ids),
            status="prepared",
        )
        store.prepare_batch(batch.id, run_id, campaign_id, seq, key, composition, ids)
        yield batch, items


class CampaignJob:
    def __init__(self, ctx: RunContext, campaign: Campaign) -> None:
        self.ctx = ctx
        self.campaign = campaign
        self.cid = campaign.id
        self.store = ctx.store
        self.run_id = ctx.run_id
        filters, transforms = build_pipeline_stages(
            BuildContext(policy=ctx.policy, campaign_id=self.cid)
        )
        self.pipeline = Pipeline(filters, transforms)
        self._pause_lock = threading.Lock()
        self._paused = False
        self._stop: ArchiverError | None = None
        self._partial: list[tuple[StoredBatch, wire.ArchiveResponse]] = []
        self._partial_lock = threading.Lock()

    # -- driver -------------------------------------------------------------------
    def run(self) -> str:
        """Process the campaign; returns its final status."""
        obs = self.ctx.observer
        obs.campaign_started(self.cid)
        self.store.set_campaign(self.run_id, self.cid, "listing")
        status, reason = "done", ""
        try:
            self.list_all()
            self.store.set_campaign(self.run_id, self.cid, "listed")
            self.store.quarantine_unanonymized(self.run_id, self.cid)
            self.ctx.observer.planned(self.cid, self.store.pending_count(self.run_id, self.cid))
            self.recover_open_batches()
            self.archive_all()
            self.verify_partial_batches()
            if isinstance(self._stop, CampaignSkipped):
                status, reason = "skipped", str(self._stop)
                self.store.skip_pending(self.run_id, self.cid, reason)
            elif self._stop is not None:
                status, reason = "failed", str(self._stop)
            elif self.ctx.cancelled.is_set():
                status, reason = "failed", "run interrupted"
        except CampaignAborted as err:
            status, reason = "aborted", str(err)
        except (ApiError, Interrupted) as err:
            status, reason = "failed", str(err)
        finally:
            self.resume_if_paused()
        if status != "done":
            log.error("campaign %s %s: %s", self.cid, status, reason)
        self.store.fail_pending(self.run_id, self.cid, reason or "not archived in this run")
        self.store.set_campaign(self.run_id, self.cid, status, reason)
        obs.campaign_finished(self.cid, status, reason)
        return status

    # -- listing ------------------------------------------------------------------
    def list_all(self) -> None:
        offset = 0
        for page in self.ctx.source.pages(self.cid):
            if self.ctx.cancelled.is_set():
                raise Interrupted("run interrupted while listing")
            decisions = [
                self.pipeline.decide(raw, fallback_id=f"(no id, offset {offset + i})")
                for i, raw in enumerate(page)
            ]
            offset += len(page)
            self.store.record_listed(self.run_id, self.cid, decisions)
            self.ctx.crash_point("page_listed")
            self.ctx.observer.listed(self.cid, len(decisions))

    # -- recovery -----------------------------------------------------------------
    def recover_open_batches(self) -> None:
        for batch in self.store.open_batches(self.cid):
            items = self.store.batch_items(batch.id)
            listed = [i for i in items if i.run_id == self.run_id]
            gone = [i.attempt_id for i in items if i.run_id != self.run_id]
            if listed and not gone and all(i.anonymized for i in listed):
                log.info("campaign %s: resending open batch %s with its key", self.cid, batch.id)
                self._send(batch, items)
                continue
            # Left the listing: archived by the request whose answer we never recorded.
            log.info(
                "campaign %s: open batch %s reconciled with the listing: %d archived, %d to redo",
                self.cid,
                batch.id,
                len(gone),
                len(listed),
            )
            gone_set = set(gone)
            kept = [i for i in items if i.attempt_id in gone_set]
            self.store.release_batch(
                batch,
                keep=gone,
                run_id=self.run_id,
                events=self.ctx.batch_events(batch, kept, None) if kept else (),
            )
            self.ctx.outbox.drain(wait=False)
        # A member whose record now says it is not anonymized went back to pending
        # instead of being resent: it never reaches an archive body.
        self.store.quarantine_unanonymized(self.run_id, self.cid)

    # -- archiving ----------------------------------------------------------------
    def archive_all(self) -> None:
        max_items = self.ctx.policy.batch.max_items
        window = self.ctx.policy.connection.max_in_flight
        inflight: deque[Future[None]] = deque()
        if self._stop is not None or self.ctx.cancelled.is_set():
            return
        try:
            for batch, items in next_batches(self.store, self.run_id, self.cid, max_items):
                self.ctx.crash_point("batch_prepared")
                inflight.append(self.ctx.http.submit(self._send, batch, items))
                while len(inflight) >= window:
                    inflight.popleft().result()
                if self._stop is not None or self.ctx.cancelled.is_set():
                    break
        finally:
            while inflight:
                inflight.popleft().result()

    def _request(self, items: list[PendingItem]) -> wire.ArchiveRequest:
        return payloads.archive_request(self.ctx.policy, self.cid, items)

    def _send(self, batch: StoredBatch, items: list[PendingItem]) -> None:
        """POST one batch and record what happened; never raises for API errors."""
        request = self._request(items)
        try:
            try:
                response = self.ctx.client.archive(
                    self.cid, request, idempotency_key=batch.idempotency_key
                )
            except CampaignActive as err:
                self._on_active(err)
                response = self.ctx.client.archive(
                    self.cid, request, idempotency_key=batch.idempotency_key
                )
        except CampaignSkipped as err:
            # Not failed: the policy asked to skip a dialing campaign. The rest of its
            # attempts are recorded skipped when the campaign ends.
            self._stop = self._stop or err
            self.store.batch_failed(
                batch, run_id=self.run_id, error=str(err), sent=False, state="skipped"
            )
            return
        except ApiError as err:
            sent = isinstance(err, Transient)
            if not sent:
                self._stop = self._stop or err
            self.store.batch_failed(batch, run_id=self.run_id, error=str(err), sent=sent)
            self.ctx.observer.archived(self.cid, 0, len(items))
            return
        self.ctx.crash_point("batch_posted")
        self._record(batch, items, response)

    def _record(
        self, batch: StoredBatch, items: list[PendingItem], response: wire.ArchiveResponse
    ) -> None:
        body = response.model_dump(by_alias=True)
        if response.failed_count > 0:
            # Which items failed is not in the answer: the listing still has them.
            # They are found by one re-listing once the campaign's batches are done.
            with self._partial_lock:
                self._partial.append((batch, response))
            return
        self.store.batch_done(
            batch,
            run_id=self.run_id,
            archived_ids=[i.attempt_id for i in items],
            failed={},
            response=body,
            events=self.ctx.batch_events(batch, items, response),
        )
        self.ctx.observer.archived(self.cid, len(items), 0)
        self.ctx.crash_point("batch_recorded")
        self.ctx.outbox.drain(wait=False)

    def verify_partial_batches(self) -> None:
        if not self._partial:
            return
        items_of = {batch.id: self.store.batch_items(batch.id) for batch, _ in self._partial}
        members = {i.attempt_id for items in items_of.values() for i in items}
        still_listed: set[str] = set()
        for page in self.ctx.source.pages(self.cid):
            for raw in page:
                aid = wire.attempt_id_of(raw)
                if aid in members:
                    still_listed.add(aid)
        for batch, response in self._partial:
            items = items_of[batch.id]
            archived = [i for i in items if i.attempt_id not in still_listed]
            reason = (
                f"archive call reported {response.failed_count} failed item(s); "
                "this attempt was still listed after its batch"
            )
            failed = {i.attempt_id: reason for i in items if i.attempt_id in still_listed}
            self.store.batch_done(
                batch,
                run_id=self.run_id,
                archived_ids=[i.attempt_id for i in archived],
                failed=failed,
                response=response.model_dump(by_alias=True),
                events=self.ctx.batch_events(batch, archived, response),
            )
            self.ctx.observer.archived(self.cid, len(archived), len(failed))
        self._partial.clear()
        self.ctx.outbox.drain(wait=False)

    # -- active campaigns -----------------------------------------------------------
    def _on_active(self, err: CampaignActive) -> None:
        mode = self.campaign.on_active
        if mode == "skip":
            raise CampaignSkipped(f"campaign {self.cid} is actively dialing (on_active: skip)")
        if mode == "fail":
            raise err
        with self._pause_lock:
            if self._paused:
                return
            # Recorded before the PATCH: a run that dies now is undone by the next one.
            self.store.record_pause(self.cid, self.run_id, "ACTIVE")
            self.ctx.client.set_campaign_status(self.cid, "PAUSED")
            self.ctx.crash_point("campaign_paused")
            self._paused = True
            self.ctx.observer.paused(self.cid)
            log.info("campaign %s paused to archive (on_active: pause_and_resume)", self.cid)

    def resume_if_paused(self) -> None:
        with self._pause_lock:
            if not self._paused:
                return
            try:
                self.ctx.client.set_campaign_status(self.cid, "ACTIVE")
            except ApiError as err:
                log.error(
                    "campaign %s: could not restore ACTIVE (the next run will): %s", self.cid, err
                )
                return
            self.store.clear_pause(self.cid)
            self._paused = False
            self.ctx.observer.resumed(self.cid)
            log.info("campaign %s resumed", self.cid)


def batch_context(
    ctx: RunContext,
    batch: StoredBatch,
    items: list[PendingItem],
    response: wire.ArchiveResponse | None,
) -> dict[str, Any]:
    """The template context of a ``batch_archived`` event (see archiver.templates)."""
    return payloads.batch_event(
        run_id=ctx.run_id,
        policy=ctx.policy,
        batch=batch,
        lines=items,
        response=response,
        timestamp=now(),
    )

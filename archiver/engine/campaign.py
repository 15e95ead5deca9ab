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

The campaign's listing comes from the policy's backend, from the watermark its last
clean run left (a backend that pages by update time); the watermark moves on only
when every attempt the run listed reached a final state other than failed, so a
failed or unfinished attempt is listed again.

A run with a batch limit (``run --max-batches``, :mod:`archiver.engine.budget`) takes
each batch from the command's budget before forming it; once the budget is spent the
campaign stops ``stopped``: its batches in flight finish, and what it listed but did
not batch stays pending (not failed) for the next run, which lists it again.

Dialing: before its first batch the backend is asked whether the campaign dials
(``Backend.dialing``), and again when an ``act`` is refused with CampaignActive;
``on_active`` decides. A pause is recorded with what the backend pauses before it
pauses it, and the next run restores it if this one dies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from archiver.engine.backend import ActResult, AttemptRecord, MalformedRecord
from archiver.engine.building import BuildContext
from archiver.engine.context import RunContext, RunHalted, as_record
from archiver.engine.noid import NoIdNames
from archiver.engine.pipeline import Pipeline
from archiver.engine.records import Decision
from archiver.engine.stoppable import STOP_GRACE_SECONDS, LeftRunning, call_stoppable
from archiver.errors import (
    ApiError,
    ArchiverError,
    CampaignAborted,
    CampaignActive,
    ConfigError,
    StageFailed,
    Transient,
)
from archiver.governance.holds import HoldSet
from archiver.policy.model import CXONE, Batch, Campaign, Policy
from archiver.stages.guard import in_call, is_plugin
from archiver.stages.registry import build_pipeline_stages
from archiver.state.attempts import PendingItem
from archiver.state.batches import StoredBatch
from archiver.state.store import Store

log = logging.getLogger(__name__)


class Interrupted(ArchiverError):
    """The run was asked to stop (SIGINT/SIGTERM)."""


class CampaignSkipped(ArchiverError):
    """The campaign is actively dialing and the policy says ``on_active: skip``."""


def changes_tenant(policy: Policy, campaign: Campaign) -> bool:
    """Whether archiving ``campaign`` changes anything on the tenant, so that its dialing
    matters (``on_active``): not for a cxone export, ``action`` given or not (export is
    cxone's default); campaign-archive's archive calls always do."""
    if campaign.action is not None:
        return campaign.action != "export"
    return policy.connection.api != CXONE


def composition_of(attempt_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(attempt_ids)).encode()).hexdigest()


class RequestLine(Protocol):
    """What a batch's request is built from for one attempt (a stored PendingItem, or the
    line of a preview): its listed values and its decided retention."""

    @property
    def attempt_id(self) -> str: ...
    @property
    def contact_id(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def disposition(self) -> str | None: ...
    @property
    def duration(self) -> int | None: ...
    @property
    def anonymized(self) -> bool | None: ...
    @property
    def retention_days(self) -> int: ...


def batch_settings(batch: Batch) -> dict[str, Any]:
    """The policy's batch settings an archive body carries (not ``max_items``: it decides
    which attempts a batch holds, which the composition already says)."""
    return {"force_cold_storage": batch.force_cold_storage, "delete_active": batch.delete_active}


def request_of(lines: Iterable[RequestLine], settings: Mapping[str, Any]) -> str:
    """A digest of what a batch's request says beyond its attempt ids: each attempt's
    listed values and decided retention (an archive item's fields), and the batch
    ``settings``. Nothing of a run or a store, so ``plan`` shows the key a run sends."""
    rows = sorted(
        (
            line.attempt_id, line.contact_id, line.outcome, line.disposition, line.duration,
            line.anonymized, line.retention_days,
        )
        for line in lines
    )
    text = json.dumps([dict(settings), rows], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def idempotency_key(campaign_id: str, composition: str, request: str) -> str:
    """A hash of the campaign id, the batch's sorted attempt ids and what its request says
    of them (``request_of``), and nothing else: no run id, no counter of this store. Two
    state stores that form the same batch send the same key, so an API that replays keys
    answers the second as a replay. A batch formed again after its request changed (the
    policy's retention, a record's listed values) is another request under another key:
    an API that keeps keys refuses a key it has seen with a different body."""
    digest = hashlib.sha256(f"{campaign_id}\n{composition}\n{request}".encode()).hexdigest()
    return f"arc-{digest[:40]}"


def batch_id_of(key: str) -> str:
    """A batch's id follows from its key: the same batch has the same id in every store."""
    return key.removeprefix("arc-")[:20]


def next_batches(
    store: Store, run_id: str, campaign_id: str, max_items: int, *, anonymized_only: bool = True,
    holds: HoldSet | None = None, admit: Callable[[], bool] | None = None,
    whole_contacts: bool = False, settings: Mapping[str, Any] | None = None,
) -> Iterator[tuple[StoredBatch, list[PendingItem]]]:
    """The campaign's archive-eligible attempts of this run, sorted by id and cut into
    chunks of ``max_items`` from the start; each is committed (composition and key)
    before anyone sends it, then yielded. Streams, so memory stays flat.
    ``anonymized_only``: only attempts listed as anonymized (a backend with the flag).
    ``holds``: read again before each batch is formed; a pending attempt a hold now
    covers is recorded ``held`` instead of batched.
    ``admit``: asked once a next batch is found, before it is formed; False ends the
    batches there (the batch limit), its attempts left pending.
    ``whole_contacts`` (``Backend.whole_contacts``): sorted by contact, then id, and a
    contact's attempts are never split between batches (a batch may then hold fewer
    than ``max_items``, or more when one contact alone has more); a hold on one attempt
    of a contact holds all of them.
    ``settings``: the policy's batch settings (``batch_settings``), part of each key."""
    seq = store.batches.max_seq(run_id, campaign_id)
    after = ("", "")
    while items := _unheld(store, run_id, campaign_id, after, max_items, anonymized_only, holds,
                           whole_contacts):
        if admit is not None and not admit():
            return
        after = (items[-1].contact_id, items[-1].attempt_id) if whole_contacts else (
            "", items[-1].attempt_id)
        seq += 1
        ids = [i.attempt_id for i in items]
        composition = composition_of(ids)
        key = idempotency_key(campaign_id, composition, request_of(items, settings or {}))
        batch = StoredBatch(
            id=batch_id_of(key),
            run_id=run_id,
            campaign_id=campaign_id,
            seq=seq,
            idempotency_key=key,
            size=len(ids),
            status="prepared",
        )
        store.batches.prepare(batch.id, run_id, campaign_id, seq, key, composition, ids)
        yield batch, items


def _unheld(
    store: Store, run_id: str, campaign_id: str, after: tuple[str, str], max_items: int,
    anonymized_only: bool, holds: HoldSet | None, whole_contacts: bool,
) -> list[PendingItem]:
    """The next chunk of unbatched attempts, once those a hold covers now are recorded
    held (they leave the pending attempts, so the chunk is read again, full)."""
    if holds:
        holds.refresh()
    while True:
        items = (
            store.attempts.unbatched_contacts(
                run_id, campaign_id, after, max_items, anonymized_only=anonymized_only
            )
            if whole_contacts else
            store.attempts.unbatched(
                run_id, campaign_id, after[1], max_items, anonymized_only=anonymized_only
            )
        )
        if not holds:
            return items
        held: dict[str, str] = {}
        for item in items:
            hold = holds.match(campaign_id, item.attempt_id, item.contact_id)
            if hold is not None:
                held[item.attempt_id] = hold.reason
        if whole_contacts:
            # Acting on one attempt acts on its whole contact: one held attempt (now, or
            # when it was listed) holds all of them.
            by_contact = store.attempts.held_contacts(
                run_id, campaign_id, [i.contact_id for i in items]
            )
            by_contact.update(
                (i.contact_id, held[i.attempt_id]) for i in items if i.attempt_id in held
            )
            held.update(
                (i.attempt_id, f"{by_contact[i.contact_id]}, on another attempt of contact"
                 f" {i.contact_id}")
                for i in items if i.contact_id in by_contact and i.attempt_id not in held
            )
        if not held:
            return items
        store.attempts.hold_pending(run_id, campaign_id, held)
        log.info("campaign %s: %d attempt(s) held before batching", campaign_id, len(held))


class CampaignJob:
    def __init__(self, ctx: RunContext, campaign: Campaign) -> None:
        self.ctx = ctx
        self.campaign = campaign
        self.cid = campaign.id
        self.store = ctx.store
        self.run_id = ctx.run_id
        self.backend = ctx.backend
        # Backends whose records carry an anonymized flag: only true ever goes out.
        self.flagged = "anonymized" in ctx.backend.fields
        built = ctx.stages.get(self.cid)
        filters, transforms = built if built is not None else build_pipeline_stages(
            BuildContext(policy=ctx.policy, campaign_id=self.cid)
        )
        self.holds = ctx.holds
        self.pipeline = Pipeline(
            filters, transforms, guard_anonymized=self.flagged, holds=self.holds,
            campaign_id=self.cid,
        )
        # A plugin's call may never return: its pages are decided where a stop can leave it.
        self._plugins = any(is_plugin(s) for s in (*filters, *transforms))
        self.source = ctx.policy.source.type or "attempts"  # the watermark's listing
        self._since = self.store.campaigns.watermark(self.cid, self.source)
        self._watermark: str | None = None
        self._pause_lock = threading.Lock()
        self._paused: Mapping[str, Any] | None = None
        # Why pausing the campaign failed, once it has: later refusals do not try again.
        self._pause_failed: str | None = None
        self._stop: ArchiverError | None = None
        self._partial: list[tuple[StoredBatch, list[PendingItem], ActResult]] = []
        self._partial_lock = threading.Lock()
        self._limited = False  # the command's batch budget refused a batch of this campaign

    # -- driver -------------------------------------------------------------------
    def run(self) -> str:
        """Process the campaign; returns its final status."""
        obs = self.ctx.observer
        obs.campaign_started(self.cid)
        self.store.campaigns.set_status(self.run_id, self.cid, "listing")
        status, reason = "done", ""
        try:
            if self.ctx.halted is not None:
                # An event the run could not render (context.RunContext.halt): no batch goes.
                raise RunHalted(self.ctx.halted)
            self.list_all()
            self.store.campaigns.set_status(self.run_id, self.cid, "listed")
            if self.flagged:
                self.store.attempts.quarantine_unanonymized(self.run_id, self.cid)
            pending = self.store.attempts.pending_count(self.run_id, self.cid)
            self.ctx.observer.planned(self.cid, pending)
            # An export changes nothing on the tenant: whether the campaign dials is moot.
            acts = changes_tenant(self.ctx.policy, self.campaign)
            # With the batch budget spent, or the run halted (an event it could not render,
            # while this campaign listed), there is nothing to pause for: no batch goes.
            if (acts and (pending or self.store.batches.open(self.cid))
                    and self.ctx.halted is None and not self._spent()):
                self.check_dialing()
            self.recover_open_batches()
            self.archive_all()
            self.verify_partial_batches()
            if isinstance(self._stop, CampaignSkipped):
                status, reason = "skipped", str(self._stop)
                self.store.attempts.skip_pending(self.run_id, self.cid, reason)
            elif self._stop is not None:
                status, reason = "failed", str(self._stop)
            elif self.ctx.halted is not None:
                status, reason = "failed", self.ctx.halted
            elif self.ctx.cancelled.is_set():
                status, reason = "failed", "run interrupted"
            elif self._limited and (
                left := self.store.attempts.pending_count(self.run_id, self.cid)
            ):
                status, reason = "stopped", (
                    f"stopped at --max-batches {self.ctx.budget.limit}: {left} attempt(s) "
                    "left pending for the next run"
                )
        except CampaignAborted as err:
            status, reason = "aborted", str(err)
        except (ApiError, Interrupted, RunHalted) as err:
            status, reason = "failed", str(err)
        except ConfigError as err:
            # A hold file that no longer reads: what must not be archived is unknown.
            status, reason = "failed", str(err)
        except StageFailed as err:
            # A third-party stage raised deciding or shaping: its campaign stops, the
            # others go on, and the run ends recorded.
            status, reason = "failed", str(err)
        finally:
            self.resume_if_paused()
        if status == "stopped":
            log.warning("campaign %s %s", self.cid, reason)
        elif status != "done":
            log.error("campaign %s %s: %s", self.cid, status, reason)
        left = 0
        if status != "stopped":
            left = self.store.attempts.fail_pending(
                self.run_id, self.cid, reason or "not archived in this run"
            )
        if status == "done":
            self.keep_watermark()
        self.store.campaigns.set_status(self.run_id, self.cid, status, reason)
        obs.campaign_finished(self.cid, status, reason, failed=left)
        return status

    # -- listing ------------------------------------------------------------------
    def list_all(self) -> None:
        # A record without an id is named by its content, never its offset: the next
        # run lists it elsewhere (archived attempts leave the listing) under the same name.
        unnamed = NoIdNames()
        if self.holds:
            self.holds.refresh()  # a hold placed while other campaigns ran
        for page in self.backend.pages(self.cid, since=self._since):
            if self.ctx.cancelled.is_set():
                raise Interrupted("run interrupted while listing")
            decisions: list[Decision] = []
            try:
                self._decide(page.records, unnamed, decisions)
            except CampaignAborted as err:
                # The listing stops at the attempt that aborts the campaign: it and the
                # page's attempts before it are recorded (those pending fail with the
                # campaign's reason), so every attempt counted as listed has its state.
                self._record_until_abort(decisions, page.records[len(decisions)], err)
                raise
            self.store.attempts.record_listed(self.run_id, self.cid, decisions)
            if page.watermark is not None:
                self._watermark = page.watermark
            self.ctx.crash_point("page_listed")
            self.ctx.observer.listed(self.cid, len(decisions))

    def _decide(
        self, records: Sequence[AttemptRecord | MalformedRecord], unnamed: NoIdNames,
        decisions: list[Decision],
    ) -> None:
        """Decide a page's records into ``decisions``, one at a time, until a stop. With a
        plugin among the stages, the page is decided on a thread of its own, which the run
        leaves running when a stage does not return within the grace after a stop."""

        def decide() -> None:
            for record in records:
                if self.ctx.cancelled.is_set():
                    raise Interrupted("run interrupted while listing")
                decisions.append(self.pipeline.decide(record, fallback_id=unnamed.name(record)))

        if not self._plugins:
            decide()
            return
        try:
            call_stoppable(decide, self.ctx.cancelled, f"deciding {self.cid}")
        except LeftRunning:
            # The record the page's decider was at (the ones before it are decided).
            at = _id_of(records[len(decisions)]) if len(decisions) < len(records) else "?"
            stage = in_call((*self.pipeline.filters, *self.pipeline.transforms))
            raise Interrupted(
                f"run interrupted while listing: {stage or 'a plugin stage'} did not return "
                f"from attempt {at} within {STOP_GRACE_SECONDS:g} s of the stop (left running)"
            ) from None

    def _record_until_abort(
        self, decisions: list[Decision], record: AttemptRecord | MalformedRecord,
        err: CampaignAborted,
    ) -> None:
        attempt = record if isinstance(record, AttemptRecord) else None
        decisions.append(Decision(attempt_id=_id_of(record), kind="quarantine",
                                  reason=err.reason, attempt=attempt))
        self.store.attempts.record_listed(self.run_id, self.cid, decisions)
        self.ctx.observer.listed(self.cid, len(decisions))

    def keep_watermark(self) -> None:
        """The next run lists from where this one ended, once nothing it listed is left
        to do: no attempt pending, failed or held, no batch open."""
        if self._watermark is None or self._watermark == self._since:
            return
        left = self.store.attempts.counts(self.run_id).get(self.cid, {})
        # A held attempt is listed again by later runs, to be archived once its hold ends.
        again = ("failed", "pending", "held")
        if any(left.get(s, 0) for s in again) or self.store.batches.open(self.cid):
            return
        self.store.campaigns.set_watermark(self.cid, self.source, self._watermark)

    # -- recovery -----------------------------------------------------------------
    def recover_open_batches(self) -> None:
        for batch in self.store.batches.open(self.cid):
            items = self.store.batches.items(batch.id)
            listed = [i for i in items if i.run_id == self.run_id]
            gone = [i.attempt_id for i in items if i.run_id != self.run_id]
            if self._stop is not None:
                continue  # the campaign dials and is skipped: the batch waits for a later run
            # A member a hold now covers is not resent: the batch is reconciled instead,
            # and what is still listed goes back to pending, where the hold catches it.
            held_now = self._any_held(listed) or self._contact_held(listed)
            if (listed and not gone and not held_now
                    and (not self.flagged or all(i.anonymized for i in listed))):
                if self.ctx.halted is not None:
                    continue  # stays open: the next run resends or reconciles it
                if not self.ctx.budget.take():
                    self._limited = True  # stays open: the next run resends or reconciles it
                    continue
                log.info("campaign %s: resending open batch %s with its key", self.cid, batch.id)
                # What the dead run wrote of it goes first: the tenant may refuse the
                # resend in whole or in part, and the batch's event writes the file again
                # with what it archives, if anything.
                self._discard_files(batch)
                self._send(batch, items, resend=True)
                continue
            # Left the listing: archived by the request whose answer we never recorded.
            # Not by a call of this run, which did not list them either: its report counts
            # them as reconciled (Batches.release leaves them the run that listed them).
            log.info(
                "campaign %s: open batch %s reconciled with the listing: %d archived, %d to redo",
                self.cid,
                batch.id,
                len(gone),
                len(listed),
            )
            # The batch's file, if the dead run wrote it, holds every member, not what
            # this reconciling archives (the rest are batched anew, a held one not at
            # all): it goes, and the batch's event below writes it again with those.
            self._discard_files(batch)
            gone_set = set(gone)
            kept = [i for i in items if i.attempt_id in gone_set]
            self.store.batches.release(
                batch,
                keep=gone,
                run_id=self.run_id,
                events=self.ctx.batch_events(batch, kept, None, None) if kept else (),
            )
            self.ctx.outbox.drain(wait=False)
        # A member whose record now says it is not anonymized went back to pending
        # instead of being resent: it never reaches an archive body.
        if self.flagged:
            self.store.attempts.quarantine_unanonymized(self.run_id, self.cid)

    def _discard_files(self, batch: StoredBatch) -> None:
        """Remove what a run that died before recording ``batch`` wrote of it: its file,
        or the temporary file of a write cut off (each writer's ``discard_batch``)."""
        for writer in self.ctx.writers:
            discard = getattr(writer, "discard_batch", None)
            if discard is not None and discard(self.cid, batch.id):
                log.info("campaign %s: removed the unrecorded file of batch %s",
                         self.cid, batch.id)

    def _contact_held(self, items: list[PendingItem]) -> bool:
        """With a backend that acts on whole contacts: an attempt of one of these items'
        contacts that the batch does not hold (listed since it was formed) is held in
        this run. Resending the batch would take that attempt along."""
        if not self.backend.whole_contacts(self.cid):
            return False
        contacts = [i.contact_id for i in items]
        return bool(self.store.attempts.held_contacts(self.run_id, self.cid, contacts))

    def _any_held(self, items: list[PendingItem]) -> bool:
        if not self.holds:
            return False
        self.holds.refresh()
        return any(self.holds.match(self.cid, i.attempt_id, i.contact_id) for i in items)

    # -- archiving ----------------------------------------------------------------
    def archive_all(self) -> None:
        max_items = self.ctx.policy.batch.max_items
        window = self.ctx.policy.connection.max_in_flight
        inflight: deque[Future[None]] = deque()
        if self._stop is not None or self.ctx.cancelled.is_set() or self.ctx.halted is not None:
            return
        batches = next_batches(
            self.store, self.run_id, self.cid, max_items, anonymized_only=self.flagged,
            holds=self.holds, admit=self._take_budget,
            whole_contacts=self.backend.whole_contacts(self.cid),
            settings=batch_settings(self.ctx.policy.batch),
        )
        try:
            for batch, items in batches:
                self.ctx.crash_point("batch_prepared")
                inflight.append(self.ctx.http.submit(self._send, batch, items))
                while len(inflight) >= window:
                    inflight.popleft().result()
                if (self._stop is not None or self.ctx.cancelled.is_set()
                        or self.ctx.halted is not None):
                    break
        except BaseException:
            _settle(inflight)  # the first error goes on; the others' batches are recorded
            raise
        # Every batch in flight is recorded before the campaign ends, whatever one of
        # them raised (a file sink's template failing on a record halts the run): the
        # campaign's end must not overtake a batch still being archived.
        failed = _settle(inflight)
        if failed is not None:
            raise failed

    def _take_budget(self) -> bool:
        if self.ctx.halted is not None:
            return False  # the run sends no further batch: none is formed, none counted
        if self.ctx.budget.take():
            return True
        self._limited = True
        return False

    def _spent(self) -> bool:
        """The command's batch budget is spent: this campaign can send no batch."""
        if self.ctx.budget.spent:
            self._limited = True
            return True
        return False

    def _send(self, batch: StoredBatch, items: list[PendingItem], *, resend: bool = False) -> None:
        """Act on one batch and record what happened; never raises for API errors.
        A new batch (not ``resend``) is not sent once the run halted."""
        records = [as_record(i, self.store.where) for i in items]
        key = batch.idempotency_key
        if self.ctx.halted is not None and not resend:
            # Formed while another batch's event failed to render: not sent, its
            # attempts retried by a later run.
            self.store.batches.failed(
                batch, run_id=self.run_id, error=self.ctx.halted, sent=False
            )
            self.ctx.observer.archived(self.cid, 0, len(items))
            return
        try:
            try:
                result = self._act(records, key)
            except CampaignActive as err:
                self._on_active(err)
                result = self._act(records, key)
        except CampaignSkipped as err:
            # Not failed: the policy asked to skip a dialing campaign. The rest of its
            # attempts are recorded skipped when the campaign ends.
            self._stop = self._stop or err
            self.store.batches.failed(
                batch, run_id=self.run_id, error=str(err), sent=False, state="skipped"
            )
            return
        except ApiError as err:
            sent = isinstance(err, Transient)
            if not sent:
                self._stop = self._stop or err
            self.store.batches.failed(batch, run_id=self.run_id, error=str(err), sent=sent)
            self.ctx.observer.archived(self.cid, 0, len(items))
            return
        self.ctx.crash_point("batch_posted")
        self._record(batch, items, result)

    def _act(self, records: list[AttemptRecord], key: str) -> ActResult:
        # A run that lost the campaign's lock with its store session (another run may be
        # at work on it now, resending this very batch) sends nothing more of it.
        self.store.check_held(self.cid)
        return self.backend.act(self.cid, records, idempotency_key=key)

    def _record(self, batch: StoredBatch, items: list[PendingItem], result: ActResult) -> None:
        outcomes = [_outcome(result, i) for i in items]
        if any(outcome == "unknown" for outcome, _ in outcomes):
            # Which items failed is not in the answer: the listing still has them.
            # They are found by one re-listing once the campaign's batches are done.
            with self._partial_lock:
                self._partial.append((batch, items, result))
            return
        self._done(batch, items, outcomes, result)
        self.ctx.crash_point("batch_recorded")
        self.ctx.outbox.drain(wait=False)

    def _done(
        self, batch: StoredBatch, items: list[PendingItem], outcomes: list[tuple[str, str]],
        result: ActResult,
    ) -> None:
        """Record a batch's settled outcomes (archived or failed, one per item) and its events."""
        archived: list[PendingItem] = []
        failed: dict[str, str] = {}
        for item, (outcome, reason) in zip(items, outcomes, strict=True):
            if outcome == "archived":
                archived.append(item)
            else:
                failed[item.attempt_id] = reason
        self.store.batches.done(
            batch,
            run_id=self.run_id,
            archived_ids=[i.attempt_id for i in archived],
            failed=failed,
            response=_response(result),
            events=self.ctx.batch_events(batch, archived, result.status, result.job_id),
        )
        self.ctx.observer.archived(self.cid, len(archived), len(failed))

    def verify_partial_batches(self) -> None:
        """Settle the batches whose answers left unknown what they archived, once the
        campaign's other batches are done: one listing of the campaign for all of them,
        and an attempt gone from it was archived. When an answer was lost
        (``ActResult.lost``) the listing waits one backoff first, and a batch with an
        attempt still listed is not closed on that listing alone:
        - after an error answer ("answered": the server is done with the call), a batch
          whose every attempt is still listed did not take effect; it is sent again with
          its key (unless a hold now covers one of them: then its attempts go back to
          pending, the held ones recorded held), and settled the same way, until the
          policy's ``retry.max_attempts`` sends are spent;
        - with no answer at all ("unanswered": a timeout, a cut connection, a 504), the
          server may still be at work on it: it is not sent again in this run.
        A batch not settled so stays open, its attempts failed for now, and the next run
        reconciles it with its own listing. Nothing is sent again blind: an API that
        ignores idempotency keys would archive it twice."""
        sends = 1
        while self._partial:
            if any(result.lost for _, _, result in self._partial):
                # Time for a server still at work on a lost call before the listing decides.
                self.ctx.cancelled.wait(self.ctx.policy.retry.full_jitter(sends - 1))
            still_listed = self._still_listed(
                {i.attempt_id for _, items, _ in self._partial for i in items}
            )
            again: list[tuple[StoredBatch, list[PendingItem], ActResult]] = []
            left_open: list[tuple[StoredBatch, list[PendingItem], ActResult]] = []
            released = False
            for batch, items, result in self._partial:
                listed = sum(1 for i in items if i.attempt_id in still_listed)
                if result.lost is None or not listed:
                    self._done(batch, items, self._settled(result, items, still_listed), result)
                elif result.lost == "answered" and listed == len(items):
                    if self._any_held(items) or self._contact_held(items):
                        # Never took effect, and a hold now covers a member: not sent
                        # again (as recover_open_batches); its attempts go back to pending.
                        self.store.batches.release(batch, keep=[], run_id=self.run_id)
                        released = True
                    else:
                        again.append((batch, items, result))
                else:
                    left_open.append((batch, items, result))
            self._partial.clear()
            if released:  # the held ones are recorded held; the rest stay pending
                self._hold_pending()
            self.ctx.outbox.drain(wait=False)
            if sends >= self.ctx.policy.retry.max_attempts or not self._may_resend():
                left_open += again
                again = []
            for batch, items, result in left_open:
                error = next(iter(result.outcomes.values()), ("unknown", "answer lost"))[1]
                self.store.batches.failed(
                    batch, run_id=self.run_id, sent=True,
                    error=f"{error}; sent {sends} time(s), still listed: left for the next run",
                )
                self.ctx.observer.archived(self.cid, 0, len(items))
            if not again:
                return
            sends += 1
            log.info(
                "campaign %s: %d batch(es) whose answer was lost are still listed: sending "
                "them again", self.cid, len(again),
            )
            inflight: deque[Future[None]] = deque(
                self.ctx.http.submit(self._send, batch, items, resend=True)
                for batch, items, _ in again
            )
            failed = _settle(inflight)
            if failed is not None:
                raise failed

    def _still_listed(self, members: set[str]) -> set[str]:
        """Which of ``members`` the campaign's listing holds now."""
        still_listed: set[str] = set()
        for page in self.backend.pages(self.cid, since=self._since):
            for record in page.records:
                found = _id_of(record)
                if found in members:
                    still_listed.add(found)
        return still_listed

    @staticmethod
    def _settled(
        result: ActResult, items: list[PendingItem], still_listed: set[str]
    ) -> list[tuple[str, str]]:
        outcomes: list[tuple[str, str]] = []
        for i in items:
            outcome, reason = _outcome(result, i)
            if outcome == "unknown":
                outcome = "failed" if i.attempt_id in still_listed else "archived"
                reason = (
                    f"{reason}; this attempt was still listed after its batch"
                    if outcome == "failed" else ""
                )
            outcomes.append((outcome, reason))
        return outcomes

    def _hold_pending(self) -> None:
        """Record held the pending attempts a hold covers now, a batch's worth at a time
        (as forming batches does, so memory stays flat); the others stay pending."""
        whole = self.backend.whole_contacts(self.cid)
        after = ("", "")
        while items := _unheld(self.store, self.run_id, self.cid, after,
                               self.ctx.policy.batch.max_items, self.flagged, self.holds, whole):
            last = items[-1]
            after = (last.contact_id, last.attempt_id) if whole else ("", last.attempt_id)

    def _may_resend(self) -> bool:
        return (self._stop is None and not self.ctx.cancelled.is_set()
                and self.ctx.halted is None)

    # -- active campaigns -----------------------------------------------------------
    def check_dialing(self) -> None:
        """Before the campaign's first batch: a campaign the backend sees dialing follows
        on_active now (skip: nothing of it is sent; fail: it fails; or it is paused)."""
        try:
            dialing = self.backend.dialing(self.cid)
            if dialing is not None:
                self._follow_on_active(dialing, None)
        except CampaignSkipped as err:
            self._stop = err

    def _on_active(self, err: CampaignActive) -> None:
        """An act was refused because the campaign dials."""
        dialing = self.backend.dialing(self.cid)
        if dialing is None:
            raise err  # the backend sees nothing dialing: a refusal like any other
        self._follow_on_active(dialing, err)

    def _follow_on_active(self, dialing: Mapping[str, Any], err: CampaignActive | None) -> None:
        mode = self.campaign.on_active
        if mode == "skip":
            raise CampaignSkipped(f"campaign {self.cid} is actively dialing (on_active: skip)")
        if mode == "fail":
            raise err or CampaignActive(
                f"campaign {self.cid} is actively dialing (on_active: fail)", campaign_id=self.cid
            )
        with self._pause_lock:
            if self._paused is not None:
                return
            if self._pause_failed is not None:
                # One failed pause is enough: every later batch refused for dialing would
                # otherwise stop and restart the campaign's dialing again.
                raise CampaignActive(self._pause_failed, campaign_id=self.cid)
            # Recorded before the pause: a run that dies now is undone by the next one.
            self.store.campaigns.record_dialing(self.cid, self.run_id, dialing)
            try:
                self.backend.pause(self.cid, dialing)
            except ApiError as pause_error:
                # Part of it may have stopped before the pause failed (one skill stops,
                # the next refuses): that part dials again now, not after a later run.
                self._undo_pause(dialing)
                self._pause_failed = (
                    f"campaign {self.cid} is actively dialing and could not be paused: "
                    f"{pause_error}"
                )
                failed = CampaignActive(self._pause_failed, campaign_id=self.cid)
                # The campaign sends no more batches in this run.
                self._stop = self._stop or failed
                raise failed from pause_error
            self.ctx.crash_point("campaign_paused")
            self._paused = dialing
            self.ctx.observer.paused(self.cid)
            log.info("campaign %s paused to archive (on_active: pause_and_resume)", self.cid)

    def _undo_pause(self, dialing: Mapping[str, Any]) -> None:
        try:
            self.backend.resume(self.cid, dialing)
        except ApiError as err:
            log.error(
                "campaign %s: could not restore dialing after a failed pause (the next run "
                "will): %s", self.cid, err
            )
            return
        self.store.campaigns.clear_pause(self.cid)

    def resume_if_paused(self) -> None:
        with self._pause_lock:
            if self._paused is None:
                return
            try:
                self.backend.resume(self.cid, self._paused)
            except ApiError as err:
                log.error(
                    "campaign %s: could not resume dialing (the next run will): %s", self.cid, err
                )
                return
            self.store.campaigns.clear_pause(self.cid)
            self._paused = None
            self.ctx.observer.resumed(self.cid)
            log.info("campaign %s resumed", self.cid)


def _settle(inflight: deque[Future[None]]) -> BaseException | None:
    """Wait for every future in ``inflight``; the first error any of them raised."""
    first: BaseException | None = None
    while inflight:
        try:
            inflight.popleft().result()
        except BaseException as err:  # each is waited for; the first error is raised after
            first = first or err
    return first


def _id_of(record: AttemptRecord | MalformedRecord) -> str:
    return record.id if isinstance(record, AttemptRecord) else record.attempt_id


def _outcome(result: ActResult, item: PendingItem) -> tuple[str, str]:
    return result.outcomes.get(
        item.attempt_id, ("failed", "the backend reported nothing for this attempt")
    )


def _response(result: ActResult) -> dict[str, Any]:
    """What the state store keeps of the backend's answer."""
    return dict(result.raw) if result.raw else {"status": result.status, "job_id": result.job_id}

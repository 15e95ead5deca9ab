"""A run of one policy: lock, recover, process campaigns concurrently, report.

The run holds the state folder's lock for its whole life, restores campaigns a
dead run left paused, writes ``run_started`` and ``run_finished`` events through
the outbox, and ends with every listed attempt in exactly one final state.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from archiver import __version__
from archiver.clock import now
from archiver.engine import failpoints, payloads
from archiver.engine.backend import Backend
from archiver.engine.budget import BatchBudget
from archiver.engine.campaign import CampaignJob
from archiver.engine.context import RunContext, Stages
from archiver.engine.observer import NullObserver, RunObserver
from archiver.engine.outbox import Outbox, claim_sinks, sink_keys
from archiver.engine.protocols import Sink
from archiver.engine.records import COUNTED
from archiver.engine.totals import run_totals
from archiver.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, ApiError, StorageError
from archiver.governance.holds import HoldSet
from archiver.policy.model import Campaign, Policy
from archiver.stages.guard import GuardedSink
from archiver.state import location
from archiver.state.location import StateLocation
from archiver.state.store import Store
from archiver.target import Target

log = logging.getLogger(__name__)

def new_run_id() -> str:
    return datetime.now(UTC).strftime("r%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


@dataclass
class RunResult:
    run_id: str
    exit_code: int
    report: dict[str, Any]


@contextmanager
def _stop_on_signals(cancelled: threading.Event, backend: Backend) -> Iterator[None]:
    """SIGTERM stops a run like Ctrl-C, within seconds: waits end, calls in flight are
    abandoned (an archive batch stays open for the next run), paused campaigns resume.
    A second signal abandons the resuming too; the next run restores those campaigns."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        again = cancelled.is_set()
        cancelled.set()
        backend.cancel()  # takes no lock: safe whatever the main thread was doing
        if again:
            log.warning("signal %d again: stopping now, without resuming paused campaigns", signum)
        else:
            log.warning(
                "signal %d: stopping; calls in flight are abandoned, paused campaigns resumed "
                "(signal again to skip that)",
                signum,
            )

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run_policy(
    policy: Policy,
    *,
    backend: Backend,
    sinks: list[Sink],
    state_dir: StateLocation,
    target: Target,
    observer: RunObserver | None = None,
    on_report: Callable[[dict[str, Any]], object] | None = None,
    run_id: str | None = None,
    budget: BatchBudget | None = None,
    stages: Mapping[str, Stages] | None = None,
    refused: Callable[[], BaseException | None] | None = None,
) -> RunResult:
    """Run ``policy`` against ``target`` (what ``backend`` talks to); a state folder used
    for another target refuses the run (ConfigError) before its first request.
    ``budget``: the command's archive batches (``run --max-batches``), shared by the
    policies it runs; the run stops ``stopped`` when it is spent with work left.
    ``stages``: each campaign's filters and transforms, built already (``run`` builds
    them before its first request); a campaign not in it builds its own.
    ``refused``: whether the API refused the credentials during the run (the command then
    exits 78); the run's own records (report, ``runs``, the signed run_finished line) say
    that exit code too, not 1."""
    observer = observer or NullObserver()
    with location.run_lock(state_dir):
        store = Store(state_dir)
        try:
            claim_sinks(store, list(sink_keys(sinks)), [s.name for s in sinks], state_dir)
            return _run_locked(
                policy, backend, sinks, store, observer, on_report, run_id or new_run_id(),
                target, budget or BatchBudget(), stages or {}, refused,
            )
        finally:
            store.close()


def check_state_target(state_dir: StateLocation, target: Target) -> None:
    """Refuse (ConfigError) a state folder that belongs to another target, before anything
    connects; ``run_policy`` checks again, under the folder's lock, when it binds it."""
    if not location.exists(state_dir):
        return
    # Under the folder's lock: a run that holds it may be creating the store right now
    # (a second run refuses with exit 75 here instead of meeting half-made tables).
    with location.run_lock(state_dir):
        store = Store(state_dir)
        try:
            store.runs.check_target(target)
        finally:
            store.close()


def _run_locked(
    policy: Policy,
    backend: Backend,
    sink_list: list[Sink],
    store: Store,
    observer: RunObserver,
    on_report: Callable[[dict[str, Any]], object] | None,
    run_id: str,
    target: Target,
    budget: BatchBudget,
    stages: Mapping[str, Stages],
    refused: Callable[[], BaseException | None] | None = None,
) -> RunResult:
    started = time.time()
    sent_before = budget.sent
    holds = hold_set(policy)  # a hold file that does not read refuses the run here
    store.runs.start(run_id, policy.name, policy.sha256, target)
    sinks = sink_keys(sink_list)
    workers = policy.connection.max_in_flight
    with ThreadPoolExecutor(workers, thread_name_prefix="http") as http:
        ctx = RunContext(
            run_id=run_id,
            policy=policy,
            store=store,
            backend=backend,
            http=http,
            outbox=Outbox(store, sinks),
            sinks=sinks,
            observer=observer,
            target=target,
            holds=holds,
            budget=budget,
            stages=stages,
        )
        for sink in sink_list:
            if isinstance(sink, GuardedSink):  # a plugin's delivery may never return
                sink.stop_on(ctx.cancelled)
        with _stop_on_signals(ctx.cancelled, backend):
            _restore_pauses(ctx)
            # Events an earlier run could not render go first, in their place; one that
            # still fails halts the run before its first batch (engine.context).
            ctx.render_kept()
            start_event = _run_event(ctx, "run_started", {})
            store.events.enqueue(ctx.events(start_event["event_id"], start_event))
            ctx.outbox.drain()
            statuses = _process_campaigns(ctx)
            counts = store.attempts.counts(run_id)
            counts.update((c, per) for c, (per, _) in ctx.tallies.items())
            totals = Counter[str]()
            for per in counts.values():
                totals.update(per)
            # Found archived by an earlier run's open batch: not listed by this run, so
            # apart from the states, which add up to what it listed.
            reconciled = sum(store.batches.reconciled_by_run(run_id).values())
            failed = ctx.halted is not None or totals["failed"] > 0 or any(
                s in ("failed", "aborted") for s, _ in statuses.values()
            )
            # Stopped at the batch limit is not a failure: what is left is pending, not failed.
            exit_code = EXIT_FAILED if failed else EXIT_OK
            if refused is not None and refused() is not None:
                failed, exit_code = True, EXIT_CONFIG
            stopped = any(s == "stopped" for s, _ in statuses.values())
            failpoints.hit("run_finishing")
            # The signed run_finished line says how the run ended, exit code included, so
            # a report edited afterwards does not match it (`archiver evidence verify`).
            end_event = _run_event(ctx, "run_finished", dict(totals), {
                "status": _status(ctx, failed, stopped), "exit_code": exit_code,
            }, reconciled=reconciled)
            end_events = ctx.events(end_event["event_id"], end_event)
            if ctx.halted is not None and not failed:
                # Its own event failed to render: the run fails, and the event (kept or
                # rendered now) says so, as the report will.
                failed, exit_code = True, EXIT_FAILED
                end_event = _run_event(ctx, "run_finished", dict(totals), {
                    "status": _status(ctx, failed, stopped), "exit_code": exit_code,
                }, reconciled=reconciled)
                end_events = ctx.events(end_event["event_id"], end_event)
            store.events.enqueue(end_events)
            ctx.outbox.drain()
    report = build_report(ctx, statuses, counts, started, exit_code)
    if budget.limit is not None:
        report["batch_limit"] = {
            "max_batches": budget.limit, "sent": budget.sent - sent_before, "stopped": stopped,
        }
    # A stop that came while the last events were delivered still counts here.
    status = _status(ctx, failed, stopped)
    if on_report:
        on_report(report)  # may add to the report before it is stored
    store.runs.finish(run_id, status, exit_code, report, run_totals(report, status))
    return RunResult(run_id, exit_code, report)


def hold_set(policy: Policy) -> HoldSet | None:
    """The policy's legal holds (read now, and again before every batch); None when it
    lists none. ConfigError when a hold file is missing, unreadable or outside the
    policy's repository."""
    if not policy.holds:
        return None
    return HoldSet([(policy.resolve(w, what="hold file"), w) for w in policy.holds])


def _status(ctx: RunContext, failed: bool, stopped: bool) -> str:
    """How the run ended, as ``runs`` lists it."""
    if ctx.cancelled.is_set():
        return "interrupted"
    return "failed" if failed else "stopped" if stopped else "completed"


def _run_event(
    ctx: RunContext, kind: str, counts: Mapping[str, int],
    result: Mapping[str, Any] | None = None, *, reconciled: int = 0,
) -> dict[str, Any]:
    return payloads.run_event(
        run_id=ctx.run_id, policy=ctx.policy, kind=kind, counts=counts, timestamp=now(),
        target=ctx.target.as_dict(), result=result, reconciled=reconciled,
    )


def _restore_pauses(ctx: RunContext) -> None:
    """Campaigns a dead run paused dial again, exactly as they did, first thing."""
    for campaign_id, dialing in ctx.store.campaigns.paused_dialing():
        try:
            ctx.backend.resume(campaign_id, dialing)
        except ApiError as err:
            log.error(
                "campaign %s: could not resume the dialing a previous run paused: %s",
                campaign_id,
                err,
            )
            continue
        ctx.store.campaigns.clear_pause(campaign_id)
        log.info("campaign %s: dialing resumed after an interrupted run", campaign_id)


SIGNAL_POLL_SECONDS = 0.5


def _process_campaigns(ctx: RunContext) -> dict[str, tuple[str, str]]:
    campaigns = ctx.policy.campaigns
    workers = max(1, min(len(campaigns), ctx.policy.connection.max_in_flight))
    statuses: dict[str, tuple[str, str]] = {}
    with ThreadPoolExecutor(workers, thread_name_prefix="campaign") as pool:
        futures = {c.id: pool.submit(_run_campaign, ctx, c) for c in campaigns}
        for cid, future in futures.items():
            # Signals reach the handler while the main thread waits here: it sets
            # `cancelled` and cancels the backend, which cuts the calls in flight. The
            # wait wakes every half second: one signal landing just as an endless wait
            # began would otherwise be acted on only when the campaign ended.
            while True:
                try:
                    future.result(timeout=SIGNAL_POLL_SECONDS)
                    break
                except TimeoutError:
                    _check_session(ctx)
            statuses[cid] = ctx.store.campaigns.status(ctx.run_id, cid) or ("failed", "unknown")
    return statuses



def _check_session(ctx: RunContext) -> None:
    """In a store runs share, the campaign locks live in the store's session: once it is
    lost, no call waiting for the rate limiter or a backoff may go out (another run may
    take the campaigns and resend their open batches). The backend stops as on a signal
    (paused campaigns are still resumed) and the run ends with the store's error."""
    try:
        ctx.store.check_session()
    except StorageError:
        ctx.backend.cancel()
        raise


def _run_campaign(ctx: RunContext, campaign: Campaign) -> str:
    """A campaign is this run's while it processes it. In a store runs share, one that
    another run holds (on this machine or another) is left to it: reported ``busy``,
    nothing of it listed or archived by this run, and no failure."""
    reason = _busy(ctx, campaign.id)
    if reason is not None:
        log.warning("campaign %s is busy, %s: left to that run", campaign.id, reason)
        ctx.store.campaigns.set_status(ctx.run_id, campaign.id, "busy", reason)
        ctx.observer.campaign_finished(campaign.id, "busy", reason)
        return "busy"
    try:
        status = CampaignJob(ctx, campaign).run()
        if ctx.store.shared:
            ctx.tally(campaign.id)  # before another run sharing the store can take it
        return status
    finally:
        ctx.store.unlock_campaign(campaign.id)


def _busy(ctx: RunContext, campaign_id: str) -> str | None:
    """None once this run holds the campaign; else who holds it. A holder that lets go
    between the two questions leaves the campaign free: it is taken again."""
    for _ in range(3):
        if ctx.store.try_lock_campaign(campaign_id):
            return None
        reason = ctx.store.campaign_holder(campaign_id)
        if reason is not None:
            return reason
    return "held by another run"  # taken and let go, again and again: left to the others


def build_report(
    ctx: RunContext,
    statuses: Mapping[str, tuple[str, str]],
    counts: Mapping[str, Mapping[str, int]],
    started: float,
    exit_code: int,
) -> dict[str, Any]:
    """The run report; ``counts`` is the store's per-campaign count of attempts by state.

    ``reconciled`` (per campaign and in all) counts the attempts of batches an earlier
    run sent and died before recording, found gone from this run's listing: archived by
    that run's request, not by a call of this one, and not listed by this one. They are
    neither in ``archived_in_this_run`` nor in ``listed`` and its states (which add up to
    it): ``listed`` is what this run's listing returned, as the server lists it, and an
    attempt this run never saw listed has no state of this run."""
    closed = ctx.store.batches.archived_by_run(ctx.run_id)
    reconciled = ctx.store.batches.reconciled_by_run(ctx.run_id)
    archived_now = {c: n - reconciled.get(c, 0) for c, n in closed.items()}
    reasons = ctx.store.attempts.reasons(ctx.run_id)
    reasons.update((c, why) for c, (_, why) in ctx.tallies.items())
    campaigns = []
    totals: dict[str, int] = dict.fromkeys(COUNTED, 0)
    for campaign in ctx.policy.campaigns:
        per = counts.get(campaign.id, {})
        row: dict[str, int] = {s: per.get(s, 0) for s in COUNTED}
        for s in COUNTED:
            totals[s] += row[s]
        status, reason = statuses.get(campaign.id, ("failed", "not processed"))
        entry: dict[str, Any] = {
            "id": campaign.id,
            "status": status,
            "reason": reason,
            "listed": sum(row.values()),
            **row,
            "archived_in_this_run": archived_now.get(campaign.id, 0),
            "reconciled": reconciled.get(campaign.id, 0),
            "reasons": [
                {"state": s, "reason": r, "count": n}
                for s, r, n in reasons.get(campaign.id, ())
            ],
        }
        campaigns.append(entry)
    outbox = ctx.store.events.summary()
    return {
        "run_id": ctx.run_id,
        "tool_version": __version__,
        "policy": {
            **payloads.policy_ref(ctx.policy),
            "path": str(ctx.policy.path) if ctx.policy.path else None,
        },
        "target": ctx.target.as_dict(),
        "started_at": datetime.fromtimestamp(started, UTC).isoformat().replace("+00:00", "Z"),
        "finished_at": now(),
        "duration_seconds": round(time.time() - started, 3),
        "exit_code": exit_code,
        "interrupted": ctx.cancelled.is_set(),
        "totals": {
            "listed": sum(totals.values()), **totals, "reconciled": sum(reconciled.values()),
        },
        # `archived` counts attempts whose final state is archived, including those an
        # earlier run archived and the API still lists; this counts this run's own work.
        "archived_in_this_run": sum(archived_now.values()),
        "campaigns": campaigns,
        "outbox": {
            sink: {
                # An event kept unrendered (engine.context) waits like a pending one.
                "pending": n.get("pending", 0) + n.get("unrendered", 0),
                "delivered": n.get("delivered", 0),
                "disabled": n.get("disabled", 0),
            }
            for sink, n in outbox.items()
        },
    }

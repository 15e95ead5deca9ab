"""Watches a run: the engine's observer calls and the API client's request events.

One :class:`RunMonitor` per policy run. The engine calls it from campaign and
HTTP worker threads and the client from HTTP threads, so every update takes
a lock. It forwards observer calls to listeners (the progress display) and
tags the campaign's thread for log records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from archiver.engine.observer import RunObserver
from archiver.report.logs import set_campaign
from archiver.report.stats import summarize

log = logging.getLogger(__name__)

NO_ANSWER = "none"  # the status label of a try that got no HTTP answer
DIALING = "409"  # how the API refuses to archive while a campaign is dialing


class RequestLike(Protocol):
    """What the monitor reads from :class:`archiver.cxone.RequestEvent`."""

    @property
    def endpoint(self) -> str: ...

    @property
    def status(self) -> int | None: ...

    @property
    def duration_seconds(self) -> float: ...

    @property
    def retried(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Sample:
    """One HTTP try as the monitor keeps it (for percentiles and the metrics histogram)."""

    endpoint: str
    status: str
    duration: float
    campaign_id: str | None


@dataclass
class CampaignProgress:
    listed: int = 0
    planned: int | None = None
    archived: int = 0
    failed: int = 0
    pauses: int = 0
    resumes: int = 0
    status: str | None = None
    started: float | None = None
    finished: float | None = None


@dataclass
class EndpointStats:
    durations: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    rate_limited: int = 0
    errors: int = 0
    dialing: int = 0  # 409s the policy expects (on_active: pause_and_resume or skip)

    def add(self, sample: Sample, retried: bool, *, expected: bool = False) -> None:
        self.durations.append(sample.duration)
        self.statuses[sample.status] += 1
        self.retries += retried
        self.rate_limited += sample.status == "429"
        if expected:
            self.dialing += 1
        else:
            self.errors += sample.status == NO_ANSWER or not sample.status.startswith("2")

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": len(self.durations),
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "errors": self.errors,
            "dialing": self.dialing,
            "statuses": dict(sorted(self.statuses.items())),
            "latency_seconds": summarize(self.durations),
        }


def _totals(endpoints: dict[str, EndpointStats]) -> dict[str, int]:
    return {
        "requests": sum(len(e.durations) for e in endpoints.values()),
        "retries": sum(e.retries for e in endpoints.values()),
        "rate_limited": sum(e.rate_limited for e in endpoints.values()),
        "errors": sum(e.errors for e in endpoints.values()),
        "dialing": sum(e.dialing for e in endpoints.values()),
    }


class RunMonitor:
    """Collects what a run did; an engine observer and the client's ``on_request`` hook."""

    def __init__(
        self,
        listeners: Sequence[RunObserver] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
        expected_409: Collection[str] = (),
    ) -> None:
        self._listeners = list(listeners)
        # Campaigns whose 409 (dialing) the policy handles: counted apart, not as errors.
        self._expected_409 = frozenset(expected_409)
        self._clock = clock
        self._lock = threading.Lock()
        self.campaigns: dict[str, CampaignProgress] = {}
        self.endpoints: dict[str, EndpointStats] = {}
        # Filled only when request events name their campaign.
        self.by_campaign: dict[str, dict[str, EndpointStats]] = {}
        self.samples: list[Sample] = []
        self.last_success: float | None = None  # wall clock of the last 2xx answer
        self._listener_failed = False

    def _notify(self, hook: str, *args: object) -> None:
        # A display failure must never fail the archive run that it displays.
        for listener in self._listeners:
            try:
                getattr(listener, hook)(*args)
            except Exception:
                if not self._listener_failed:
                    self._listener_failed = True
                    log.warning("progress display failed; the run goes on without it", exc_info=True)

    def _campaign(self, campaign_id: str) -> CampaignProgress:
        return self.campaigns.setdefault(campaign_id, CampaignProgress())

    # -- RunObserver ---------------------------------------------------------------
    def campaign_started(self, campaign_id: str) -> None:
        set_campaign(campaign_id)  # this is the campaign's own thread
        with self._lock:
            self._campaign(campaign_id).started = self._clock()
        self._notify("campaign_started", campaign_id)

    def listed(self, campaign_id: str, count: int) -> None:
        with self._lock:
            self._campaign(campaign_id).listed += count
        self._notify("listed", campaign_id, count)

    def planned(self, campaign_id: str, to_archive: int) -> None:
        with self._lock:
            self._campaign(campaign_id).planned = to_archive
        self._notify("planned", campaign_id, to_archive)

    def archived(self, campaign_id: str, archived: int, failed: int) -> None:
        with self._lock:
            progress = self._campaign(campaign_id)
            progress.archived += archived
            progress.failed += failed
        self._notify("archived", campaign_id, archived, failed)

    def campaign_finished(
        self, campaign_id: str, status: str, reason: str, failed: int = 0
    ) -> None:
        with self._lock:
            progress = self._campaign(campaign_id)
            progress.status = status
            progress.finished = self._clock()
            progress.failed += failed
        self._notify("campaign_finished", campaign_id, status, reason, failed)
        set_campaign(None)

    def paused(self, campaign_id: str) -> None:
        with self._lock:
            self._campaign(campaign_id).pauses += 1
        self._notify("paused", campaign_id)

    def resumed(self, campaign_id: str) -> None:
        with self._lock:
            self._campaign(campaign_id).resumes += 1
        self._notify("resumed", campaign_id)

    # -- the client's on_request ------------------------------------------------------
    def on_request(self, event: RequestLike) -> None:
        # Events name their campaign once the client reports it; until then, run-wide only.
        campaign_id = getattr(event, "campaign_id", None) or None
        status = NO_ANSWER if event.status is None else str(event.status)
        sample = Sample(event.endpoint, status, float(event.duration_seconds), campaign_id)
        expected = status == DIALING and campaign_id in self._expected_409
        with self._lock:
            self.samples.append(sample)
            stats = self.endpoints.setdefault(event.endpoint, EndpointStats())
            stats.add(sample, event.retried, expected=expected)
            if campaign_id is not None:
                per = self.by_campaign.setdefault(campaign_id, {})
                per.setdefault(event.endpoint, EndpointStats()).add(
                    sample, event.retried, expected=expected
                )
            if status.startswith("2"):
                self.last_success = time.time()

    # -- results ------------------------------------------------------------------------
    def api_section(self) -> dict[str, Any]:
        """The report's ``api`` object: totals and per-endpoint statistics of every try."""
        with self._lock:
            return {
                **_totals(self.endpoints),
                "endpoints": {name: s.to_dict() for name, s in sorted(self.endpoints.items())},
            }

    def campaign_section(self, campaign_id: str) -> dict[str, Any]:
        """What the report adds to a campaign: pauses, resumes and, if known, its API calls."""
        with self._lock:
            progress = self.campaigns.get(campaign_id, CampaignProgress())
            per = self.by_campaign.get(campaign_id)
            api: dict[str, Any] | None = None
            if per is not None:
                api = {
                    **_totals(per),
                    "endpoints": {name: s.to_dict() for name, s in sorted(per.items())},
                }
            elapsed = None
            if progress.started is not None and progress.finished is not None:
                elapsed = round(progress.finished - progress.started, 3)
            return {
                "pauses": progress.pauses,
                "resumes": progress.resumes,
                "retries": api["retries"] if api else None,
                "rate_limited": api["rate_limited"] if api else None,
                "duration_seconds": elapsed,
                "api": api,
            }


def success_rate(listed: int, failed: int) -> float | None:
    """Share of listed attempts that reached a final state other than ``failed``."""
    return None if listed == 0 else round((listed - failed) / listed, 4)


def extend_report(report: dict[str, Any], monitor: RunMonitor) -> dict[str, Any]:
    """Add the monitor's statistics to a report from ``build_report``, in place; returns it."""
    for campaign in report["campaigns"]:
        campaign.update(monitor.campaign_section(campaign["id"]))
        campaign["success_rate"] = success_rate(campaign["listed"], campaign["failed"])
    totals = report["totals"]
    totals["success_rate"] = success_rate(totals["listed"], totals["failed"])
    report["pauses"] = sum(c["pauses"] for c in report["campaigns"])
    report["resumes"] = sum(c["resumes"] for c in report["campaigns"])
    report["api"] = monitor.api_section()
    return report

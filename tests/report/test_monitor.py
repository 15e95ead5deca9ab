"""The run monitor: observer calls and request events in, report statistics out."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any

import jsonschema
import pytest

from archiver.cxone import RequestEvent
from archiver.engine.observer import NullObserver
from archiver.report.logs import current_campaign
from archiver.report.monitor import RunMonitor, extend_report, success_rate
from tests.report.conftest import check_report

CAMPAIGN = "c-1"


def event(endpoint: str, status: int | None, seconds: float, *, attempt: int = 1) -> RequestEvent:
    return RequestEvent(
        endpoint=endpoint, method="GET", status=status, duration_seconds=seconds,
        attempt=attempt, retried=attempt > 1, error=None if status and status < 300 else "x",
    )


@dataclass(frozen=True)
class CampaignEvent:
    """A request event that names its campaign."""

    endpoint: str
    status: int | None
    duration_seconds: float
    retried: bool
    campaign_id: str


def base_report(campaigns: list[tuple[str, int, int, int, int]]) -> dict[str, Any]:
    """What build_report returns, for campaigns given as (id, archived, skipped, quarantined, failed)."""
    rows: list[dict[str, Any]] = []
    for cid, a, s, q, f in campaigns:
        rows.append(
            {
                "id": cid, "status": "done", "reason": "", "listed": a + s + q + f,
                "archived": a, "skipped": s, "quarantined": q, "failed": f, "archived_in_this_run": a,
                "reasons": [{"state": "skipped", "reason": "outcome X not approved", "count": s}] if s else [],
            }
        )
    totals = {k: sum(r[k] for r in rows) for k in ("listed", "archived", "skipped", "quarantined", "failed")}
    return {
        "run_id": "r20250101T000000-abcdef",
        "tool_version": "0.1.0",
        "policy": {"name": "p", "path": "/x/p.yaml", "sha256": "0" * 64, "git_commit": None,
                   "git_dirty": None},
        "target": {"backend": "campaign-archive", "host": "api.example.com", "tenant": None},
        "started_at": "2025-01-01T00:00:00Z",
        "finished_at": "2025-01-01T00:00:05Z",
        "duration_seconds": 5.0,
        "exit_code": 1 if totals["failed"] else 0,
        "interrupted": False,
        "totals": totals,
        "archived_in_this_run": totals["archived"],
        "campaigns": rows,
        "outbox": {"webhook#0": {"pending": 0, "delivered": 3, "disabled": 0}},
    }


def test_latency_percentiles_per_endpoint_match_the_known_sample():
    monitor = RunMonitor()
    # 100 list calls taking 1..100 ms, in a scrambled order.
    for ms in [*range(2, 101, 2), *range(1, 100, 2)]:
        monitor.on_request(event("list", 200, ms / 1000))
    monitor.on_request(event("token", 200, 0.040))
    api = monitor.api_section()
    latency = api["endpoints"]["list"]["latency_seconds"]
    assert latency["p50"] == pytest.approx(0.0505)
    assert latency["p95"] == pytest.approx(0.09505)
    assert latency["p99"] == pytest.approx(0.09901)
    assert latency["max"] == pytest.approx(0.100)
    assert api["endpoints"]["token"]["latency_seconds"]["p99"] == pytest.approx(0.040)
    assert api["requests"] == 101


def test_retries_429s_and_errors_are_counted_per_endpoint():
    monitor = RunMonitor()
    monitor.on_request(event("archive", 429, 0.01))
    monitor.on_request(event("archive", 503, 0.02, attempt=2))
    monitor.on_request(event("archive", None, 5.0, attempt=3))  # no answer at all
    monitor.on_request(event("archive", 200, 0.03, attempt=4))
    monitor.on_request(event("list", 429, 0.01))
    monitor.on_request(event("list", 200, 0.01, attempt=2))
    api = monitor.api_section()
    archive = api["endpoints"]["archive"]
    assert archive["statuses"] == {"200": 1, "429": 1, "503": 1, "none": 1}
    assert (archive["retries"], archive["rate_limited"], archive["errors"]) == (3, 1, 3)
    assert (api["retries"], api["rate_limited"], api["errors"], api["requests"]) == (4, 2, 4, 6)
    assert monitor.last_success is not None


def test_samples_keep_what_the_metrics_histogram_needs():
    monitor = RunMonitor()
    monitor.on_request(event("list", 200, 0.5))
    monitor.on_request(event("list", None, 2.0))
    assert [(s.endpoint, s.status, s.duration) for s in monitor.samples] == [
        ("list", "200", 0.5), ("list", "none", 2.0),
    ]


def test_extend_report_adds_stats_and_keeps_counts_adding_up(report_schema):
    monitor = RunMonitor()
    for cid in ("c-1", "c-2"):
        monitor.campaign_started(cid)
        monitor.listed(cid, 100)
    monitor.paused("c-2")
    monitor.resumed("c-2")
    monitor.on_request(event("list", 200, 0.01))
    monitor.campaign_finished("c-1", "done", "")
    monitor.campaign_finished("c-2", "done", "")
    report = extend_report(base_report([("c-1", 60, 30, 5, 5), ("c-2", 70, 30, 0, 0)]), monitor)

    check_report(report, report_schema)
    first, second = report["campaigns"]
    assert first["success_rate"] == 0.95
    assert second["success_rate"] == 1.0
    assert report["totals"]["success_rate"] == 0.975
    assert (second["pauses"], second["resumes"], report["pauses"], report["resumes"]) == (1, 1, 1, 1)
    # Plain RequestEvents carry no campaign: per-campaign API numbers are unknown, not zero.
    assert first["retries"] is None and first["api"] is None
    assert report["api"]["endpoints"]["list"]["requests"] == 1


def test_request_events_naming_their_campaign_are_attributed(report_schema):
    monitor = RunMonitor()
    monitor.on_request(CampaignEvent("archive", 429, 0.2, False, "c-1"))
    monitor.on_request(CampaignEvent("archive", 200, 0.1, True, "c-1"))
    monitor.on_request(CampaignEvent("list", 200, 0.3, False, "c-2"))
    report = extend_report(base_report([("c-1", 10, 0, 0, 0), ("c-2", 5, 0, 0, 0)]), monitor)
    check_report(report, report_schema)
    first, second = report["campaigns"]
    assert (first["retries"], first["rate_limited"]) == (1, 1)
    assert first["api"]["endpoints"]["archive"]["requests"] == 2
    assert (second["retries"], second["rate_limited"]) == (0, 0)
    assert set(second["api"]["endpoints"]) == {"list"}


def test_schema_refuses_a_report_without_the_monitor_stats(report_schema):
    report = extend_report(base_report([("c-1", 1, 0, 0, 0)]), RunMonitor())
    broken = copy.deepcopy(report)
    del broken["api"]
    with pytest.raises(jsonschema.ValidationError):
        check_report(broken, report_schema)
    broken = copy.deepcopy(report)
    broken["campaigns"][0]["archvied"] = 1  # a typo is not silently accepted
    with pytest.raises(jsonschema.ValidationError):
        check_report(broken, report_schema)


def test_success_rate():
    assert success_rate(0, 0) is None
    assert success_rate(8, 2) == 0.75


class Recorder(NullObserver):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def listed(self, campaign_id, count):
        self.calls.append(("listed", campaign_id, count))

    def archived(self, campaign_id, archived, failed):
        raise RuntimeError("display broke")


def test_listeners_get_every_call_and_their_failures_do_not_reach_the_engine():
    recorder = Recorder()
    monitor = RunMonitor([recorder])
    monitor.listed(CAMPAIGN, 7)
    monitor.archived(CAMPAIGN, 5, 2)  # raises inside the listener only
    monitor.archived(CAMPAIGN, 1, 0)
    assert recorder.calls == [("listed", CAMPAIGN, 7)]
    progress = monitor.campaigns[CAMPAIGN]
    assert (progress.listed, progress.archived, progress.failed) == (7, 6, 2)


def test_campaign_started_tags_only_the_campaign_thread():
    monitor = RunMonitor()
    seen = {}

    def campaign_thread():
        monitor.campaign_started("c-9")
        seen["during"] = current_campaign()
        monitor.campaign_finished("c-9", "done", "")
        seen["after"] = current_campaign()

    thread = threading.Thread(target=campaign_thread)
    thread.start()
    thread.join()
    assert seen == {"during": "c-9", "after": None}
    assert current_campaign() is None

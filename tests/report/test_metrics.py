"""The Prometheus textfile: parseable, complete, atomic, and last success carried forward."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from archiver.cxone import RequestEvent
from archiver.report.metrics import LAST_SUCCESS, RunMetrics, previous_successes
from archiver.report.monitor import RunMonitor, extend_report
from tests.report.test_monitor import base_report


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def run_monitor() -> RunMonitor:
    monitor = RunMonitor()
    for seconds in (0.004, 0.02, 0.3):
        monitor.on_request(RequestEvent("list", "GET", 200, seconds, 1, False, None))
    monitor.on_request(RequestEvent("archive", "POST", 429, 0.01, 1, False, "HTTP 429"))
    monitor.on_request(RequestEvent("archive", "POST", 200, 0.2, 2, True, None))
    monitor.paused("c-1")
    return monitor


def test_metrics_file_parses_and_holds_the_run(tmp_path):
    monitor = run_monitor()
    report = extend_report(base_report([("c-1", 10, 3, 1, 0)]), monitor)
    metrics = RunMetrics()
    metrics.record(report, monitor)
    path = tmp_path / "sub" / "archiver.prom"
    metrics.write(path)

    got = samples(path)
    assert got[("archiver_attempts_total", (("campaign", "c-1"), ("state", "archived")))] == 10
    assert got[("archiver_attempts_total", (("campaign", "c-1"), ("state", "quarantined")))] == 1
    assert got[("archiver_attempts_total", (("campaign", "c-1"), ("state", "failed")))] == 0
    list_200 = (("endpoint", "list"), ("status", "200"))
    assert got[("archiver_request_duration_seconds_count", list_200)] == 3
    assert got[("archiver_request_duration_seconds_sum", list_200)] == pytest.approx(0.324)
    assert got[("archiver_request_duration_seconds_bucket", (*list_200[:1], ("le", "0.005"), list_200[1]))] == 1
    assert got[("archiver_request_duration_seconds_bucket", (*list_200[:1], ("le", "0.025"), list_200[1]))] == 2
    assert got[("archiver_request_duration_seconds_count", (("endpoint", "archive"), ("status", "429")))] == 1
    assert got[("archiver_retries_total", (("endpoint", "archive"),))] == 1
    assert got[("archiver_rate_limited_total", (("endpoint", "archive"),))] == 1
    assert got[("archiver_campaign_pauses_total", (("campaign", "c-1"),))] == 1
    assert got[(LAST_SUCCESS, (("policy", "p"),))] > 1_600_000_000
    assert not [name for name, _ in got if name.endswith("_created")]
    assert os.listdir(path.parent) == ["archiver.prom"], "no temporary file left behind"


def test_a_failed_run_keeps_the_previous_last_success(tmp_path):
    path = tmp_path / "archiver.prom"
    ok = RunMetrics()
    ok.record(extend_report(base_report([("c-1", 5, 0, 0, 0)]), RunMonitor()), RunMonitor())
    ok.write(path)
    before = previous_successes(path)["p"]

    failed = RunMetrics(previous_successes(path))
    failed.record(extend_report(base_report([("c-1", 4, 0, 0, 1)]), RunMonitor()), RunMonitor())
    failed.write(path)
    got = samples(path)
    assert got[(LAST_SUCCESS, (("policy", "p"),))] == before
    assert got[("archiver_last_run_exit_code", (("policy", "p"),))] == 1


def test_a_failed_first_run_has_no_last_success(tmp_path):
    path = tmp_path / "archiver.prom"
    metrics = RunMetrics(previous_successes(path))
    metrics.record(extend_report(base_report([("c-1", 4, 0, 0, 1)]), RunMonitor()), RunMonitor())
    metrics.write(path)
    assert LAST_SUCCESS not in {name for name, _ in samples(path)}


def test_an_unreadable_previous_file_is_ignored(tmp_path):
    path = tmp_path / "archiver.prom"
    path.write_text("this is { not prometheus\n")
    assert previous_successes(path) == {}
    assert previous_successes(tmp_path / "missing.prom") == {}

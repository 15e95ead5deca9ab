"""The Prometheus textfile: parseable, Prometheus semantics (counters only grow, per-run
figures are gauges), the target on every series, atomic, last success carried forward."""

from __future__ import annotations

import itertools
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from archiver.cxone import RequestEvent
from archiver.engine.totals import run_totals
from archiver.report.metrics import LAST_SUCCESS, RunMetrics, previous_successes
from archiver.report.monitor import RunMonitor, extend_report
from archiver.state.store import Store
from archiver.target import Target
from tests.report.test_monitor import base_report

Key = tuple[str, tuple[tuple[str, str], ...]]
REAL = Target("campaign-archive", "api.example.com")
RUN_IDS = itertools.count(1)
TARGET = (("backend", "campaign-archive"), ("host", "api.example.com"), ("policy", "p"))


def samples(path: Path) -> dict[Key, float]:
    out: dict[Key, float] = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def types(path: Path) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(path.read_text())}


def labels(**extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({**dict(TARGET), **extra}.items()))


def run_monitor() -> RunMonitor:
    monitor = RunMonitor()
    for seconds in (0.004, 0.02, 0.3):
        monitor.on_request(RequestEvent("list", "GET", 200, seconds, 1, False, None))
    monitor.on_request(RequestEvent("archive", "POST", 429, 0.01, 1, False, "HTTP 429"))
    monitor.on_request(RequestEvent("archive", "POST", 200, 0.2, 2, True, None))
    monitor.paused("c-1")
    return monitor


def finished_run(
    state: Path, rows: list[tuple[str, int, int, int, int]], *, target: Target = REAL,
    monitor: RunMonitor | None = None, archived_now: int | None = None,
) -> dict[str, Any]:
    """A report as ``archiver run`` ends one, its figures added to the store's totals."""
    report = extend_report(base_report(rows), monitor or RunMonitor())
    report["target"] = target.as_dict()
    report["run_id"] = f"r-{next(RUN_IDS)}"
    if archived_now is not None:
        for campaign in report["campaigns"]:
            campaign["archived_in_this_run"] = archived_now
    store = Store(state)
    try:
        store.runs.start(report["run_id"], "p", "0" * 64, target)
        status = "failed" if report["exit_code"] else "completed"
        store.runs.add_to_totals("p", run_totals(report, status))
    finally:
        store.close()
    return report


def test_metrics_file_parses_and_holds_the_run(tmp_path):
    state = tmp_path / "state"
    report = finished_run(state, [("c-1", 10, 3, 1, 0)], monitor=run_monitor())
    metrics = RunMetrics()
    metrics.record(report, state)
    path = tmp_path / "sub" / "archiver.prom"
    metrics.write(path)

    got = samples(path)
    kinds = types(path)
    assert got[("archiver_run_attempts", labels(campaign="c-1", state="archived"))] == 10
    assert got[("archiver_run_attempts", labels(campaign="c-1", state="quarantined"))] == 1
    assert got[("archiver_run_attempts", labels(campaign="c-1", state="failed"))] == 0
    assert kinds["archiver_run_attempts"] == "gauge"
    p50 = got[("archiver_run_request_duration_seconds", labels(endpoint="list", quantile="0.5"))]
    assert p50 == pytest.approx(0.02)
    assert got[("archiver_requests_total", labels(endpoint="list", status="200"))] == 3
    assert got[("archiver_requests_total", labels(endpoint="archive", status="429"))] == 1
    assert got[("archiver_retries_total", labels(endpoint="archive"))] == 1
    assert got[("archiver_rate_limited_total", labels(endpoint="archive"))] == 1
    assert got[("archiver_campaign_pauses_total", labels(campaign="c-1"))] == 1
    assert got[("archiver_archived_attempts_total", labels(campaign="c-1"))] == 10
    assert got[("archiver_runs_total", labels(status="completed"))] == 1
    assert got[(LAST_SUCCESS, labels())] > 1_600_000_000
    assert got[("archiver_target_info", labels(tenant=""))] == 1
    assert not [name for name, _ in got if name.endswith("_created")]
    assert os.listdir(path.parent) == ["archiver.prom"], "no temporary file left behind"


def test_the_archived_counter_counts_what_a_rerun_reconciled():
    # The run that archived them died before recording them, so it never counted them: the
    # run that found them archived (reconciled) adds them, beside what it archived itself.
    report = base_report([("c-1", 10, 0, 0, 0)])
    report["campaigns"][0]["reconciled"] = 40
    assert ("archiver_archived_attempts", {"campaign": "c-1"}, 50) in run_totals(
        report, "completed")


def test_every_total_is_a_counter_and_never_decreases_from_one_file_to_the_next(tmp_path):
    state, path = tmp_path / "state", tmp_path / "archiver.prom"
    first = RunMetrics(previous_successes(path))
    first.record(finished_run(state, [("c-1", 683, 5, 2, 0)], monitor=run_monitor()), state)
    first.write(path)
    before = samples(path)
    # A rerun with nothing left to archive: the per-run gauge drops, no counter does.
    second = RunMetrics(previous_successes(path))
    second.record(finished_run(state, [("c-1", 0, 5, 2, 0)], archived_now=0), state)
    second.write(path)
    after = samples(path)

    totals = [key for key in after if key[0].endswith("_total")]
    assert totals
    for name in {key[0] for key in totals}:
        assert types(path)[name.removesuffix("_total")] == "counter", name
    for key, value in before.items():
        if key[0].endswith("_total"):
            assert after[key] >= value, key
    assert after[("archiver_archived_attempts_total", labels(campaign="c-1"))] == 683
    assert after[("archiver_runs_total", labels(status="completed"))] == 2
    assert after[("archiver_run_attempts", labels(campaign="c-1", state="archived"))] == 0


def test_an_embedded_run_is_labelled_so_and_never_counts_as_a_success(tmp_path):
    state, path = tmp_path / "state", tmp_path / "archiver.prom"
    embedded = Target("campaign-archive", "embedded")
    metrics = RunMetrics()
    metrics.record(finished_run(state, [("c-1", 5, 0, 0, 0)], target=embedded), state)
    metrics.write(path)
    got = samples(path)
    assert LAST_SUCCESS not in {name for name, _ in got}
    hosts = {dict(key)["host"] for _, key in got}
    assert hosts == {"embedded"}
    assert got[("archiver_last_run_exit_code", (("backend", "campaign-archive"),
                                                ("host", "embedded"), ("policy", "p")))] == 0


def test_a_failed_run_keeps_the_previous_last_success(tmp_path):
    state, path = tmp_path / "state", tmp_path / "archiver.prom"
    ok = RunMetrics()
    ok.record(finished_run(state, [("c-1", 5, 0, 0, 0)]), state)
    ok.write(path)
    [(kept, before)] = previous_successes(path)
    assert kept["host"] == "api.example.com"

    failed = RunMetrics(previous_successes(path))
    failed.record(finished_run(state, [("c-1", 4, 0, 0, 1)]), state)
    failed.write(path)
    got = samples(path)
    assert got[(LAST_SUCCESS, labels())] == before
    assert got[("archiver_last_run_exit_code", labels())] == 1


def test_a_failed_first_run_has_no_last_success(tmp_path):
    state, path = tmp_path / "state", tmp_path / "archiver.prom"
    metrics = RunMetrics(previous_successes(path))
    metrics.record(finished_run(state, [("c-1", 4, 0, 0, 1)]), state)
    metrics.write(path)
    assert LAST_SUCCESS not in {name for name, _ in samples(path)}


def test_an_unreadable_previous_file_is_ignored(tmp_path):
    path = tmp_path / "archiver.prom"
    path.write_text("this is { not prometheus\n")
    assert previous_successes(path) == []
    assert previous_successes(tmp_path / "missing.prom") == []


def test_metrics_for_a_named_pipe_are_written_into_it_and_the_pipe_stays(tmp_path):
    # `--metrics /dev/null` or a pipe: no earlier file is read from it, and the metrics
    # are written into it rather than renamed over it.
    state, fifo = tmp_path / "state", tmp_path / "metrics.pipe"
    os.mkfifo(fifo)
    assert previous_successes(fifo) == []  # returns at once: nothing is read from a pipe
    metrics = RunMetrics()
    metrics.record(finished_run(state, [("c-1", 4, 0, 0, 0)]), state)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    metrics.write(fifo)
    reader.join(timeout=10)
    assert b"archiver_run_attempts" in got[0]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["metrics.pipe", "state"]

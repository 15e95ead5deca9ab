"""``--metrics FILE``: the run in Prometheus text format, for node_exporter's textfile collector.

Counters describe the run that wrote the file (the file is replaced each run).
``archiver_last_success_timestamp_seconds`` is the exception: a failed run
carries the previous file's value forward, so "no success for a day" alerts
keep working across failures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, write_to_textfile
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from archiver.engine.records import FINAL_STATES
from archiver.report.monitor import RunMonitor

log = logging.getLogger(__name__)

LAST_SUCCESS = "archiver_last_success_timestamp_seconds"
# API calls take milliseconds to the client's timeout (30 s by default) and beyond with retries.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def previous_successes(path: Path) -> dict[str, float]:
    """``archiver_last_success_timestamp_seconds`` by policy from an earlier metrics file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return {}
    found: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS and "policy" in sample.labels:
                    found[sample.labels["policy"]] = float(sample.value)
    except ValueError as err:
        log.warning("previous metrics file %s is not readable (%s); starting afresh", path, err)
        return {}
    return found


class _WithoutCreated(Collector):
    """The metrics of a registry minus their ``*_created`` series.

    The file holds one run and is replaced by the next, so a counter's creation
    time is just the run's time again: one more series per label set, no news.
    """

    def __init__(self, inner: CollectorRegistry) -> None:
        self._inner = inner

    def collect(self) -> Iterator[Metric]:
        for family in self._inner.collect():
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family


class RunMetrics:
    """The metrics of one ``archiver run`` invocation (one or more policies)."""

    def __init__(self, previous: dict[str, float] | None = None) -> None:
        # Registries of our own: the process-wide default one carries Python runtime metrics.
        r = CollectorRegistry(auto_describe=True)
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_WithoutCreated(r))
        self.attempts = Counter(
            "archiver_attempts", "Listed attempts by campaign and final state.",
            ["campaign", "state"], registry=r,
        )
        self.duration = Histogram(
            "archiver_request_duration_seconds", "Duration of each HTTP try to the CXone API.",
            ["endpoint", "status"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.retries = Counter(
            "archiver_retries", "HTTP tries that repeated an earlier one.", ["endpoint"], registry=r
        )
        self.rate_limited = Counter(
            "archiver_rate_limited", "HTTP tries answered 429 Too Many Requests.", ["endpoint"],
            registry=r,
        )
        self.pauses = Counter(
            "archiver_campaign_pauses", "Campaigns paused to archive them.", ["campaign"], registry=r
        )
        self.last_success = Gauge(
            LAST_SUCCESS, "Unix time the policy last ran with every attempt in a final state.",
            ["policy"], registry=r,
        )
        self.last_run = Gauge(
            "archiver_last_run_timestamp_seconds", "Unix time the policy's last run ended.",
            ["policy"], registry=r,
        )
        self.exit_code = Gauge(
            "archiver_last_run_exit_code", "Exit code of the policy's last run.", ["policy"], registry=r
        )
        self.run_duration = Gauge(
            "archiver_last_run_duration_seconds", "How long the policy's last run took.",
            ["policy"], registry=r,
        )
        for policy, stamp in (previous or {}).items():
            self.last_success.labels(policy=policy).set(stamp)

    def record(self, report: dict[str, Any], monitor: RunMonitor) -> None:
        """Add one policy's run: its report (counts) and its monitor (HTTP tries)."""
        for campaign in report["campaigns"]:
            for state in FINAL_STATES:
                self.attempts.labels(campaign=campaign["id"], state=state).inc(campaign[state])
            self.pauses.labels(campaign=campaign["id"]).inc(campaign.get("pauses", 0))
        for sample in monitor.samples:
            self.duration.labels(endpoint=sample.endpoint, status=sample.status).observe(sample.duration)
        for endpoint, stats in monitor.endpoints.items():
            self.retries.labels(endpoint=endpoint).inc(stats.retries)
            self.rate_limited.labels(endpoint=endpoint).inc(stats.rate_limited)
        policy = str(report["policy"]["name"])
        ended = time.time()
        self.last_run.labels(policy=policy).set(ended)
        self.exit_code.labels(policy=policy).set(report["exit_code"])
        self.run_duration.labels(policy=policy).set(report["duration_seconds"])
        if report["exit_code"] == 0:
            self.last_success.labels(policy=policy).set(ended)

    def write(self, path: Path) -> None:
        """Write atomically (a temporary file beside ``path``, then rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), self.registry)


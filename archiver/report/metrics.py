"""``--metrics FILE``: the run in Prometheus text format, for node_exporter's textfile collector.

The file is replaced at every run, so what it says follows Prometheus' rules:

- A ``_total`` is a counter and only grows, run after run: it is read from the state
  store's running totals (``Runs.totals``), to which every finished run adds its
  own figures (and the next run, those of one killed before it finished). A rerun that archives nothing leaves ``archiver_archived_attempts_total``
  where it was; it never drops to zero.
- What describes one run is a gauge named for it: ``archiver_run_attempts`` (the
  last run's attempts by final state), ``archiver_run_request_duration_seconds``
  (its latency percentiles), ``archiver_last_run_*``.
- Every series carries the run's target (``backend``, ``host``), so a run against
  the built-in simulator (``host="embedded"``) never reads as production, and
  ``archiver_last_success_timestamp_seconds`` is never written for one. A failed run
  carries the previous file's value forward, so "no success for a day" alerts keep
  working across failures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from archiver.engine.records import COUNTED
from archiver.errors import ArchiverError
from archiver.state.files import write_output
from archiver.state.location import StateLocation
from archiver.state.store import Store

log = logging.getLogger(__name__)

LAST_SUCCESS = "archiver_last_success_timestamp_seconds"
TARGET_LABELS = ("backend", "host")
QUANTILES = {"p50": "0.5", "p95": "0.95", "p99": "0.99"}

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs

# Gauges: name -> help. The label names follow from the samples.
GAUGES = {
    "archiver_run_attempts": (
        "Attempts the policy's last run listed, by campaign and final state (or pending: "
        "left for the next run by --max-batches)."
    ),
    "archiver_run_request_duration_seconds": (
        "Latency percentiles of the policy's last run, per endpoint (every HTTP try)."
    ),
    "archiver_last_run_timestamp_seconds": "Unix time the policy's last run ended.",
    "archiver_last_run_exit_code": "Exit code of the policy's last run.",
    "archiver_last_run_duration_seconds": "How long the policy's last run took.",
    LAST_SUCCESS: (
        "Unix time the policy last ran with every attempt in a final state (real targets only)."
    ),
    "archiver_target_info": "What the policy's last run talked to; host is embedded for the simulator.",
}
# Counters (running totals of the state store): name without _total -> help.
COUNTERS = {
    "archiver_runs": "Runs of the policy on this state folder, by how they ended.",
    "archiver_archived_attempts": "Attempts the policy's runs archived, by campaign.",
    "archiver_campaign_pauses": "Campaigns paused to archive them.",
    "archiver_requests": "HTTP tries to the API, by endpoint and status (none: no answer).",
    "archiver_retries": "HTTP tries that repeated an earlier one.",
    "archiver_rate_limited": "HTTP tries answered 429 Too Many Requests.",
}


def _key(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


def previous_successes(path: Path) -> list[tuple[dict[str, str], float]]:
    """The ``archiver_last_success_timestamp_seconds`` series of an earlier metrics file
    (none from a device or a pipe, such as /dev/null: reading one is no earlier file)."""
    if path.exists() and not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return []
    found: list[tuple[dict[str, str], float]] = []
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS and "policy" in sample.labels:
                    found.append((dict(sample.labels), float(sample.value)))
    except ValueError as err:
        log.warning("previous metrics file %s is not readable (%s); starting afresh", path, err)
        return []
    return found


class _Families(Collector):
    """The file's metric families, from plain (labels -> value) tables."""

    def __init__(self) -> None:
        self.gauges: dict[str, dict[Labels, float]] = {name: {} for name in GAUGES}
        self.counters: dict[str, dict[Labels, float]] = {name: {} for name in COUNTERS}

    def collect(self) -> Iterator[Metric]:
        for name, series in self.gauges.items():
            if series:
                yield self._family(GaugeMetricFamily, name, GAUGES[name], series)
        for name, series in self.counters.items():
            if series:
                yield self._family(CounterMetricFamily, name, COUNTERS[name], series)

    @staticmethod
    def _family(
        kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
        name: str,
        documentation: str,
        series: Mapping[Labels, float],
    ) -> Metric:
        names = sorted({label for key in series for label, _ in key})
        family = kind(name, documentation, labels=names)
        for key, value in sorted(series.items()):
            values = dict(key)
            family.add_metric([values.get(label, "") for label in names], value)
        return family


def _base(policy: str, target: Mapping[str, Any]) -> dict[str, str]:
    """The labels every series of a policy's run carries."""
    return {"policy": policy, **{name: str(target[name]) for name in TARGET_LABELS}}


class RunMetrics:
    """The metrics of one ``archiver run`` invocation (one or more policies)."""

    def __init__(self, previous: Sequence[tuple[Mapping[str, str], float]] = ()) -> None:
        # A registry of our own: the process-wide default one carries Python runtime metrics.
        self.registry = CollectorRegistry(auto_describe=True)
        self._families = _Families()
        self.registry.register(self._families)
        for labels, stamp in previous:
            self._families.gauges[LAST_SUCCESS][_key(labels)] = stamp

    def record(self, report: Mapping[str, Any], state_dir: StateLocation) -> None:
        """Add one policy's run: its report, and the running totals of its state folder."""
        policy = str(report["policy"]["name"])
        target = report["target"]
        base = _base(policy, target)
        gauges = self._families.gauges

        def gauge(name: str, value: float, **labels: str) -> None:
            gauges[name][_key({**base, **labels})] = value

        for campaign in report["campaigns"]:
            for state in COUNTED:
                gauge("archiver_run_attempts", campaign.get(state, 0), campaign=campaign["id"], state=state)
        for endpoint, stats in (report.get("api") or {}).get("endpoints", {}).items():
            for field, quantile in QUANTILES.items():
                seconds = stats["latency_seconds"][field]
                if seconds is not None:
                    gauge(
                        "archiver_run_request_duration_seconds", seconds,
                        endpoint=endpoint, quantile=quantile,
                    )
        ended = self._ended(base, target, report["exit_code"])
        gauge("archiver_last_run_duration_seconds", report["duration_seconds"])
        # A run against the simulator changed nothing real: it is no success to alert on;
        # nor is one stopped by --max-batches, which left attempts pending.
        stopped = bool((report.get("batch_limit") or {}).get("stopped"))
        if report["exit_code"] == 0 and target["host"] != "embedded" and not stopped:
            gauge(LAST_SUCCESS, ended)
        self._totals(policy, base, state_dir)

    def record_unstarted(
        self, policy: str, target: Mapping[str, Any], exit_code: int, state_dir: StateLocation
    ) -> None:
        """A policy's run that ended before it had a report (credentials refused at login,
        a secret missing, the state folder in use): its exit code and time, so an alert on
        ``archiver_last_run_exit_code`` sees it, and the running totals as they stand."""
        base = _base(policy, target)
        self._ended(base, target, exit_code)
        try:
            self._totals(policy, base, state_dir, read_only=True)
        except ArchiverError as err:  # no store yet, or one that cannot be read now
            log.info("metrics: the running totals of %s are left out: %s", policy, err)

    def _ended(self, base: Mapping[str, str], target: Mapping[str, Any], exit_code: int) -> float:
        """The gauges every ended run sets (when, its exit code, what it talked to); the
        time it ended."""
        gauges = self._families.gauges
        ended = time.time()
        gauges["archiver_last_run_timestamp_seconds"][_key(base)] = ended
        gauges["archiver_last_run_exit_code"][_key(base)] = exit_code
        tenant = str(target.get("tenant") or "")
        gauges["archiver_target_info"][_key({**base, "tenant": tenant})] = 1
        return ended

    def _totals(
        self, policy: str, base: Mapping[str, str], state_dir: StateLocation, *,
        read_only: bool = False,
    ) -> None:
        """The counters: the policy's running totals, as its state store keeps them."""
        store = Store.open_existing(state_dir, read_only=read_only)
        try:
            totals = store.runs.totals(policy)
        finally:
            store.close()
        for name, labels, value in totals:
            if name in self._families.counters:
                self._families.counters[name][_key({**base, **labels})] = value

    def write(self, path: Path) -> None:
        """Write atomically (a temporary file beside ``path``, then rename; a device or a
        pipe is written in place)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_output(path, generate_latest(self.registry))

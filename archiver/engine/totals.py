"""What a finished run adds to its state store's running totals.

The totals only grow, run after run (``Runs.finish`` adds a run's in the transaction
that records its end; ``Runs.start``, those of a run that died), so the metrics file
can carry them as Prometheus counters: a rerun that archives nothing leaves them
where they were instead of dropping them to zero. What describes one run only
(attempts by final state, latency) stays in the report and the metrics' gauges.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# (counter name without ``_total``, labels, amount)
Count = tuple[str, Mapping[str, str], float]

RUNS = "archiver_runs"
ARCHIVED = "archiver_archived_attempts"


def run_totals(report: Mapping[str, Any], status: str) -> list[Count]:
    """The amounts ``report`` (a finished run, ``status`` as stored) adds to the totals."""
    counts: list[Count] = [(RUNS, {"status": status}, 1)]
    for campaign in report["campaigns"]:
        labels = {"campaign": str(campaign["id"])}
        # Every attempt the policy's runs archived: those a run reconciled too (archived
        # by a killed run's request that run never recorded, so never counted for it).
        counts.append(
            (ARCHIVED, labels, campaign["archived_in_this_run"] + campaign.get("reconciled", 0))
        )
        counts.append(("archiver_campaign_pauses", labels, campaign.get("pauses", 0)))
    # The API figures are there when the run was watched (``archiver run`` always is).
    for endpoint, stats in (report.get("api") or {}).get("endpoints", {}).items():
        for code, n in stats["statuses"].items():
            counts.append(("archiver_requests", {"endpoint": endpoint, "status": code}, n))
        counts.append(("archiver_retries", {"endpoint": endpoint}, stats["retries"]))
        counts.append(("archiver_rate_limited", {"endpoint": endpoint}, stats["rate_limited"]))
    return counts


def dead_run_totals(archived: Mapping[str, int]) -> list[Count]:
    """What a run that died before finishing adds: one run ``interrupted``, and per
    campaign the attempts of the batches it recorded (``archived``); its API figures
    died with it."""
    return [
        (RUNS, {"status": "interrupted"}, 1),
        *((ARCHIVED, {"campaign": campaign}, n) for campaign, n in archived.items()),
    ]

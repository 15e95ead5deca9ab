"""Latency percentiles of a sample."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

PERCENTILES = (50, 95, 99)


def percentile(sample: Sequence[float], p: int) -> float | None:
    """The ``p``-th percentile (1..99) by linear interpolation between closest ranks.

    The definition of numpy's default: for ``[1, 2, ..., 100]`` the 95th percentile
    is 95.05. None for an empty sample.
    """
    if not 1 <= p <= 99:
        raise ValueError(f"percentile must be between 1 and 99, got {p}")
    if not sample:
        return None
    if len(sample) == 1:  # quantiles() needs two points before Python 3.13
        return float(sample[0])
    return statistics.quantiles(sample, n=100, method="inclusive")[p - 1]


def summarize(sample: Sequence[float]) -> dict[str, float | None]:
    """p50, p95, p99, mean and max of a latency sample in seconds, rounded to microseconds."""
    out: dict[str, float | None] = {f"p{p}": _round(percentile(sample, p)) for p in PERCENTILES}
    out["mean"] = _round(statistics.fmean(sample)) if sample else None
    out["max"] = _round(max(sample)) if sample else None
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)

"""Latency percentiles against samples whose answers are known by hand."""

from __future__ import annotations

import random

import pytest

from archiver.report.stats import percentile, summarize


@pytest.mark.parametrize(
    ("sample", "p", "expected"),
    [
        (list(range(1, 101)), 50, 50.5),
        (list(range(1, 101)), 95, 95.05),
        (list(range(1, 101)), 99, 99.01),
        ([10.0, 20.0, 30.0, 40.0], 50, 25.0),
        # rank (n-1)*p = 3 * 0.95 = 2.85: 30 + 0.85 * (40 - 30)
        ([10.0, 20.0, 30.0, 40.0], 95, 38.5),
        ([0.25], 99, 0.25),
        ([3.0, 3.0, 3.0], 50, 3.0),
    ],
)
def test_percentile_interpolates_between_closest_ranks(sample, p, expected):
    assert percentile(sample, p) == pytest.approx(expected)


def test_percentile_does_not_depend_on_order():
    sample = [0.01 * i for i in range(1, 201)]
    shuffled = sample[:]
    random.Random(3).shuffle(shuffled)
    assert percentile(shuffled, 95) == pytest.approx(percentile(sample, 95))
    assert percentile(shuffled, 95) == pytest.approx(1.9005)


def test_percentile_of_nothing_is_none_and_out_of_range_is_refused():
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 0)
    with pytest.raises(ValueError):
        percentile([1.0], 100)


def test_summarize_gives_the_report_fields():
    summary = summarize([0.1, 0.2, 0.3, 0.4, 1.0])
    assert summary == {
        "p50": 0.3,
        "p95": pytest.approx(0.88),
        "p99": pytest.approx(0.976),
        "mean": 0.4,
        "max": 1.0,
    }
    assert summarize([]) == {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}

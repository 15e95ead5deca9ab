"""The throughput benchmark runs end to end at small sizes, so it cannot rot."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks import throughput
from tests.support import REPO

MIB = 1 << 20


def test_quick_run_measures_every_scenario_and_finds_both_clients_correct():
    result = subprocess.run(
        [sys.executable, "benchmarks/throughput.py", "--quick", "--repeat", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=110,
    )
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-2000:]
    for header in ("(a) 50 ms latency", "(b) 20 requests/s limit", "(c) one large campaign"):
        assert header in out
    # a: tutorial + 2 archiver settings, b: tutorial + 2, c: tutorial + 1.
    assert out.count(": ok\n") == 8
    assert "FAILED" not in out
    assert "x the tutorial's speed" in out and "attempts/s, target" in out
    assert out.count("target >= 18 requests/s") == 2


def _outcome(wall: float, rss: float, problems: list[str]) -> throughput.Outcome:
    return throughput.Outcome(
        label="x", wall=wall, rss_mb=rss, exit_code=0, api_requests=10, needed=10,
        rate_limited=0, connections=1, archived=5, eligible=5, problems=list(problems),
    )


def test_repeated_runs_report_the_median_run_every_wall_time_the_worst_rss_and_all_problems(
    tmp_path,
):
    planned = iter([_outcome(3.0, 50, []), _outcome(1.0, 70, ["2 attempts archived twice"]),
                    _outcome(2.0, 60, [])])
    seen = []

    def run(work):
        seen.append(work.name)
        return next(planned)

    chosen = throughput.repeated(3, run, tmp_path)
    assert seen == ["run-1", "run-2", "run-3"]
    assert chosen.wall == 2.0
    assert chosen.walls == [3.0, 1.0, 2.0]
    assert throughput.spread(chosen.walls) == "1.00/2.00/3.00"
    assert chosen.rss_mb == 70
    assert chosen.problems == ["run 2: 2 attempts archived twice"]


@pytest.mark.parametrize(
    ("args", "option"), [(["--scenario", "a,z"], "--scenario"), (["--repeat", "0"], "--repeat")]
)
def test_bad_arguments_are_a_usage_error(args, option):
    result = subprocess.run(
        [sys.executable, "benchmarks/throughput.py", *args],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert option in result.stderr


def test_peak_rss_is_the_child_own_not_the_benchmark_process(tmp_path):
    # A big parent must not leak into a small child's figure (ru_maxrss would).
    ballast = b"\x01" * (300 * MIB)
    small = throughput.measure(
        [sys.executable, "-c", "import time; time.sleep(0.2)"], {}, tmp_path / "o", tmp_path / "e"
    )
    big = throughput.measure(
        [sys.executable, "-c", "import time; b = b'\\x01' * (200 << 20); time.sleep(0.3)"],
        {}, tmp_path / "o", tmp_path / "e",
    )
    assert len(ballast) == 300 * MIB
    assert small.exit_code == 0 and big.exit_code == 0
    assert small.rss_mb < 100
    assert big.rss_mb > 200
    assert big.wall >= 0.3

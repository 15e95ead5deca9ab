"""The throughput benchmark runs end to end at small sizes, so it cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

from benchmarks import throughput
from tests.support import REPO

MIB = 1 << 20


def test_quick_run_measures_every_scenario_and_finds_both_clients_correct():
    result = subprocess.run(
        [sys.executable, "benchmarks/throughput.py", "--quick", "--repeat", "1"],
        # About 17 s on an idle machine; the bound only catches a hang, not a busy machine.
        cwd=REPO, capture_output=True, text=True, timeout=400,
    )
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-2000:]
    for header in ("(a) 50 ms latency", "(b) 20 requests/s limit", "(c) one large campaign"):
        assert header in out
    # a: tutorial + 2 archiver settings, b: tutorial + 4, c: tutorial + 1.
    assert out.count(": ok\n") == 10
    assert "FAILED" not in out
    assert "x the tutorial's speed" in out and "attempts/s, target" in out
    assert out.count("target >= 18 sustained requests/s") == 4
    assert out.count("no Retry-After): target >= 18 sustained requests/s") == 2
    # Scenario (a) says what it runs: a production policy's sinks, 16 in flight.
    a = out[out.index("(a) 50 ms latency"):out.index("(b) 20 requests/s limit")]
    assert "max_in_flight 16, page_size 100, 1000" in a
    assert "sinks: webhook + audit_log" in a
    # ... and what of the 8x budget start-up takes, in seconds from real spawns.
    budget = re.search(
        r"8x needs a run of at most (\d+\.\d\d) s\. .*importing the chosen packages "
        r"(\d+\.\d\d) s \(\d+% of it\), everything `archiver run` imports (\d+\.\d\d) s", a
    )
    assert budget is not None, a
    packages, command = float(budget[2]), float(budget[3])
    # Separate spawns on a shared machine: either can be the slower one.
    assert packages > 0 and command > 0
    # ... and the floor: a do-nothing client making the calls the tutorial's pages need
    # (the tutorial's own "needed" figure), every one served (else the run fails).
    tutorial_needed = re.search(r"^tutorial +\S+ +\S+ +\S+ +\S+ +([\d,]+) ", a, re.M)
    assert tutorial_needed is not None, a
    floor = re.search(
        r"The floor, median of 1: a client importing the chosen packages but rich, then making the "
        r"([\d,]+) calls a page_size 100 run needs, 16 at a time, and doing nothing with the "
        r"answers, takes (\d+\.\d\d) s \(\d+% of the budget; \d+\.\dx the tutorial\)", a
    )
    assert floor is not None, a
    assert floor[1] == tutorial_needed[1] and float(floor[2]) > 0


def test_scenario_a_runs_archiver_with_both_sinks_and_at_most_16_in_flight(tmp_path):
    scenario = throughput.FULL["a"]
    assert scenario.max_in_flight == 16
    assert {setting.page_size for setting in scenario.settings} == {100, 1000}
    doc = throughput.policy_doc(
        scenario, scenario.settings[0], tmp_path / "audit.jsonl", "http://127.0.0.1:1/_sim/webhooks"
    )
    assert [sink["type"] for sink in doc["sinks"]] == ["webhook", "audit_log"]
    assert doc["connection"]["max_in_flight"] == 16


def test_scenario_b_measures_429s_with_and_without_retry_after():
    settings = throughput.FULL["b"].settings
    assert {(s.max_requests_per_second, s.retry_after) for s in settings} == {
        (20, True), (40, True), (20, False), (40, False)
    }


def test_the_sustained_rate_leaves_out_the_servers_initial_burst():
    # 20 calls at once (a full bucket), then one every 50 ms for 5 s: 20/s sustained,
    # although all calls over the span would say 24/s.
    arrivals = [0.0] * 20 + [0.05 * n for n in range(1, 101)]
    assert len(arrivals) / 5.0 == 24.0
    assert throughput.sustained_rate(arrivals) == pytest.approx(20.0)
    # A run too short to outlast the burst has no sustained rate.
    assert throughput.sustained_rate([0.0] * 20 + [0.5, 1.2]) is None
    assert throughput.sustained_rate([]) is None


def test_webhook_check_wants_every_event_received_once_and_validly_signed():
    report = {"outbox": {"webhook#0": {"pending": 0, "delivered": 5, "disabled": 0},
                         "audit_log#1": {"pending": 0, "delivered": 5, "disabled": 0}}}
    ok = {"received": 6, "valid": 6, "invalid": 0, "unique_accepted": 5}
    assert throughput.webhook_problems(report, ok) == []
    lost = {**ok, "unique_accepted": 4}
    assert throughput.webhook_problems(report, lost) == [
        "5 webhook events delivered, the receiver accepted 4"
    ]
    pending = {"outbox": {"webhook#0": {"pending": 2, "delivered": 3, "disabled": 0}}}
    assert "2 webhook event(s) not delivered" in throughput.webhook_problems(pending, {**ok, "unique_accepted": 3})


def _outcome(wall: float, rss: float, problems: list[str]) -> throughput.Outcome:
    return throughput.Outcome(
        label="x", wall=wall, rss_mb=rss, exit_code=0, cpu=0.5, api_requests=10, needed=10,
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
    ("args", "option"),
    [
        (["--scenario", "a,z"], "--scenario"),
        (["--repeat", "0"], "--repeat"),
        (["--fsync-delay-ms", "-1"], "--fsync-delay-ms"),
    ],
)
def test_bad_arguments_are_a_usage_error(args, option):
    result = subprocess.run(
        [sys.executable, "benchmarks/throughput.py", *args],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert option in result.stderr


def test_a_slow_disk_slows_every_fsync_of_the_clients(tmp_path, monkeypatch):
    folder = tmp_path / "slow"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(throughput._SLOW_FSYNC)
    monkeypatch.setattr(throughput, "SLOW_FSYNC", (folder, 150.0))
    env = throughput.client_env(SimpleNamespace(base_url="http://127.0.0.1:1"))
    code = (
        "import os, sys, time; fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o600); "
        "t = time.monotonic(); os.fsync(fd); print(time.monotonic() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "f")], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) >= 0.15


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


def test_cpu_is_the_child_own_and_the_exit_code_is_kept(tmp_path):
    # A child that sleeps uses almost no CPU; one that spins uses about its wall time.
    # The benchmark's own CPU never counts.
    sleeper = throughput.measure(
        [sys.executable, "-c", "import sys, time; time.sleep(0.4); sys.exit(3)"], {},
        tmp_path / "o", tmp_path / "e",
    )
    spinner = throughput.measure(
        [sys.executable, "-c",
         "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass"],
        {}, tmp_path / "o", tmp_path / "e",
    )
    assert sleeper.exit_code == 3 and spinner.exit_code == 0
    assert sleeper.cpu < 0.3 < 0.4 <= spinner.cpu


def test_a_floor_from_a_client_that_did_not_make_every_call_is_refused(tmp_path, monkeypatch):
    scenario = throughput.QUICK["a"]
    # Exits 0 having made none of its calls: its wall time would be no floor at all.
    monkeypatch.setattr(throughput, "_BARE_CLIENT", "{packages}\n")
    with pytest.raises(RuntimeError, match=r"the bare client failed \(0 of 5 calls served\)"):
        throughput.bare_floor(scenario, 5, 1, tmp_path)

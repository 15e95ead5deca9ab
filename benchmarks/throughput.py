"""End-to-end throughput: ``archiver run`` beside the tutorial's approach, against the simulator.

    python benchmarks/throughput.py [--scenario a,b,c] [--repeat N] [--quick] [--no-sinks]
                                    [--fsync-delay-ms MS] [--keep]

Scenarios (6 campaigns x 2,000 attempts unless named otherwise):
  (a) 50 ms added to every API answer, no rate limit: wall time of each and the
      ratio; archiver with max_in_flight 16 and both sinks a real policy has (an
      audit log and a webhook to the simulator's receiver), page_size 100 (the
      tutorial's page, so both need the same calls) and page_size 1000 (the API's
      largest).
  (b) a 20 requests/s limit and no added latency: requests/s achieved against it
      (all calls over wall time, and "sustained": the calls from one second after
      the first, when the server's initial burst is spent, to the last, over that
      span) and the share answered 429, with the policy's max_requests_per_second at
      the real limit (20) and at twice it (40), each with the simulator's 429s
      carrying Retry-After and without it (as real CXone often answers).
  (c) 1 campaign x 500,000 attempts, no latency: attempts/s end to end (state
      store writes included) and peak RSS; archiver with page_size 1000.

Targets (figures, not pass/fail): (a) archiver at least 8x faster; (b) a sustained rate of
at least 90 % of the limit with under 2 % of requests answered 429, at both policy figures;
(c) at least 20,000 attempts/s and a peak RSS under 150 MB.

Every run gets a fresh simulator in a separate process, so its CPU and memory are
not counted against the client. The data set is clean (no unanonymized or
malformed records, no null ``retentionDays``): on anything else the tutorial
aborts whole campaigns and would be measured doing less work. ``archiver run``
writes an audit log (``audit_log`` sink: one fsync'd, hash-chained line per batch
and per run start and end) and delivers a signed webhook per event to the
simulator's receiver (``webhook`` sink), unless ``--no-sinks``; the tutorial posts
its warehouse callback to the simulator's receiver and appends its own audit
line, as written. Each scenario prints the settings it runs archiver with.
``--fsync-delay-ms MS`` makes every ``os.fsync`` of the clients take MS longer (a
busy or networked disk; SQLite's own syncs are not slowed): archiver's audit log
syncs, the tutorial's appends never do.

Scenario (a) also prints what of the 8x budget (the tutorial's wall time over 8) start-up
takes before any request: a fresh interpreter importing the packages the project chose,
and one importing everything ``archiver run`` loads; each the median of N spawns. And
the floor, the median of N runs each against a fresh simulator: a fresh interpreter
importing the chosen packages a run needs before it may send anything (all but rich,
which only prints), taking a token, then making the rest of the calls a
page_size 100 run needs (listing pages, every one held back by the same latency)
max_in_flight at a time over kept-alive connections, doing nothing with the answers.
No client with those packages and that limit does the job in less.

Every client runs N times (``--repeat``, default 3), each against a fresh
simulator: the run with the median wall time (for an even N, the slower of the
middle two) is the one whose figures are printed and judged ("x faster" is the tutorial's median over archiver's), the
"runs s" column lists every run's wall time, peak RSS is the highest of the runs,
and a problem in any run is reported. Shared machines are noisy; one run can
be off by a fifth either way.

Wall time is the client process's, from spawn to exit, start-up included. The
archiver package's bytecode is compiled first, as ``pip install`` does: the run
imports the working tree's package, and with PYTHONDONTWRITEBYTECODE set Python
would otherwise compile every module of it again at each start (about 70 ms). Peak
RSS is the client's ``VmHWM`` (the kernel's high-water mark of its resident set),
polled from /proc every 20 ms until it exits. ``getrusage``/``wait4``'s
``ru_maxrss`` is not used: it keeps the high-water mark of the address space the
child was forked from, i.e. this benchmark's own, across ``exec``.

Columns: "CPU s", the client's user + system CPU time over all its threads, from
``wait4`` (a figure close to the wall time means the client is bound by its own CPU,
not by the server's latency); "API calls" as the simulator counted them (its /_sim/ routes excluded);
"needed", the fewest calls that do the job (one token, pages up to the first
short one, batches of 200), so the difference is speculative listing; "connections",
the TCP connections the client opened; "archived/eligible", from the simulator's
ledger. Every run is checked: no attempt archived twice, nothing ineligible
archived, archiver's report counts add up and match the ledger, and with sinks
every webhook event was received once, validly signed, with none left pending. The exit status is
1 when a check fails; a missed target only shows in the table.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml

REPO = Path(__file__).resolve().parent.parent
TUTORIAL = Path(__file__).resolve().parent / "_tutorial.py"
CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-client-secret-7Qv2"
WEBHOOK_SECRET = "whsec_YmVuY2gtd2ViaG9vay1zZWNyZXQtM0pkOC1wYWRkaW5n"  # Standard Webhooks format
WEBHOOK_SECRET_ENV = "BENCH_WEBHOOK_SECRET"
APPROVED = ("SURVEY_TAKEN", "NO_ANSWER", "BUSY", "DISCONNECTED")
TUTORIAL_PAGE_SIZE = 100
MAX_BATCH = 200
RUN_TIMEOUT_SECONDS = 1800.0
RSS_POLL_SECONDS = 0.02

# The simulator in its own process, configured beyond what its command line offers
# (null retentionDays off); it stops when the benchmark closes its stdin.
_SERVE_SIMULATOR = """
import json, sys
from archiver.simulator import Faults, SimConfig, Simulator
spec = json.loads(sys.argv[1])
sim = Simulator(SimConfig(**spec["config"]), Faults(**spec["faults"])).start()
print(sim.base_url, flush=True)
sys.stdin.read()
sim.stop()
"""

# Loaded by the clients' interpreters with --fsync-delay-ms: a slower disk, for fsync.
_SLOW_FSYNC = """
import os, time
_fsync, _delay = os.fsync, float(os.environ["BENCH_FSYNC_DELAY_MS"]) / 1000
def _slow_fsync(fd):
    time.sleep(_delay)
    return _fsync(fd)
os.fsync = _slow_fsync
"""
# Set by --fsync-delay-ms: a folder holding a sitecustomize module, and the delay.
SLOW_FSYNC: tuple[Path, float] | None = None

# The benchmark's own calls to /_sim/ never go through a proxy from the environment.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Setting:
    """One ``archiver run`` configuration measured in a scenario."""

    label: str
    page_size: int
    max_requests_per_second: float = 1000.0
    retry_after: bool = True  # the simulator's 429 answers carry Retry-After


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    campaigns: int
    attempts: int
    settings: tuple[Setting, ...]
    latency_ms: float = 0.0
    rate_limit: float | None = None
    max_in_flight: int = 8

    @property
    def campaign_ids(self) -> list[str]:
        return [f"00000000-0000-4000-8000-{n:012d}" for n in range(1, self.campaigns + 1)]


def scenarios(campaigns: int, attempts: int, large: int) -> dict[str, Scenario]:
    return {
        "a": Scenario(
            "a", "50 ms latency, no rate limit", campaigns, attempts,
            (Setting("archiver run (page_size 100)", 100),
             Setting("archiver run (page_size 1000)", 1000)),
            # Round trips, not the rate, bound this tenant; 16 in flight is what a
            # production policy may use against a real tenant.
            latency_ms=50, max_in_flight=16,
        ),
        "b": Scenario(
            "b", "20 requests/s limit", campaigns, attempts,
            (Setting("archiver run (policy 20 rps)", 100, 20),
             Setting("archiver run (policy 40 rps)", 100, 40),
             Setting("archiver run (policy 20 rps, no Retry-After)", 100, 20, retry_after=False),
             Setting("archiver run (policy 40 rps, no Retry-After)", 100, 40, retry_after=False)),
            rate_limit=20,
        ),
        "c": Scenario(
            "c", "one large campaign, no latency", 1, large,
            (Setting("archiver run", 1000),),
        ),
    }


FULL = scenarios(6, 2000, 500_000)
QUICK = scenarios(2, 400, 5000)


@dataclass
class Outcome:
    """One client run against its own simulator, and what the simulator saw."""

    label: str
    wall: float
    rss_mb: float
    exit_code: int
    cpu: float  # the client's CPU seconds (user + system)
    api_requests: int
    needed: int  # the fewest API calls that do the job: token, pages to the first short one, batches
    rate_limited: int
    connections: int
    archived: int  # distinct attempts in the simulator's ledger
    eligible: int
    listed: int = 0
    # API calls per second once the server's bucket could have been spent: from one
    # second after the first API call (the simulator's burst is one second's worth) to
    # the last one. None when the run made too few calls to tell.
    sustained: float | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)  # every repeat's wall time, in run order

    @property
    def requests_per_second(self) -> float:
        return self.api_requests / self.wall

    @property
    def share_429(self) -> float:
        return self.rate_limited / self.api_requests if self.api_requests else 0.0


# The simulator's token bucket starts full with one second's worth of calls.
BURST_SECONDS = 1.0

# -- processes ------------------------------------------------------------------


class SimProcess:
    """A simulator serving one scenario's data set from a child process."""

    def __init__(self, scenario: Scenario, log: Path, *, retry_after: bool = True) -> None:
        spec = {
            "config": {
                "seed": 7,
                "campaign_ids": scenario.campaign_ids,
                "attempts_per_campaign": scenario.attempts,
                "unanonymized_rate": 0.0,
                "malformed_rate": 0.0,
                "retention_null_share": 0.0,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "webhook_secret": WEBHOOK_SECRET,
                # Archive bodies kept for /_sim/requests would only cost the simulator
                # memory; (b) reads the calls' arrival times from the log (a few hundred).
                "request_log_size": 5000 if scenario.rate_limit else 0,
            },
            "faults": {
                "latency_ms": scenario.latency_ms,
                "rate_limit_rps": scenario.rate_limit,
                "retry_after": retry_after,
            },
        }
        with log.open("wb") as err:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _SERVE_SIMULATOR, json.dumps(spec)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, cwd=REPO, text=True,
            )
        assert self._proc.stdout is not None
        self.base_url = self._proc.stdout.readline().strip()
        if not self.base_url.startswith("http://"):
            self.close()
            raise RuntimeError(f"the simulator did not start; see {log}")

    def get(self, path: str, **query: str) -> Any:
        url = f"{self.base_url}/_sim/{path}" + (f"?{urlencode(query)}" if query else "")
        with _LOCAL.open(url, timeout=120) as answer:
            return json.load(answer)

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


@contextmanager
def simulator(scenario: Scenario, log: Path, *, retry_after: bool = True) -> Iterator[SimProcess]:
    sim = SimProcess(scenario, log, retry_after=retry_after)
    try:
        yield sim
    finally:
        sim.close()


@dataclass(frozen=True)
class Measured:
    wall: float
    rss_mb: float
    exit_code: int
    cpu: float  # the client's user + system CPU seconds, all its threads


def _peak_rss_kib(pid: int) -> int | None:
    """VmHWM of a live process; None once it has exited (a zombie has no memory)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def measure(cmd: Sequence[str], env: dict[str, str], out: Path, err: Path) -> Measured:
    """Run ``cmd`` to its end: its wall time, peak RSS and exit code."""
    peak = 0
    done = threading.Event()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr
        )

        def poll() -> None:
            nonlocal peak
            # Stops before the pid is reaped: after that it could name another process.
            while not done.is_set():
                kib = _peak_rss_kib(proc.pid)
                if kib is None:
                    return
                peak = max(peak, kib)
                done.wait(RSS_POLL_SECONDS)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        watchdog = threading.Timer(RUN_TIMEOUT_SECONDS, proc.kill)
        watchdog.start()
        try:
            # Waits for the exit without reaping, so the poller never reads a reused pid.
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            wall = time.perf_counter() - started
            done.set()
            poller.join()
            # Reaped here for its resource usage (Popen.wait would discard it).
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            watchdog.cancel()
    return Measured(wall, peak / 1024, proc.returncode, usage.ru_utime + usage.ru_stime)


def client_env(sim: SimProcess) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    env.update(
        CXONE_BASE_URL=sim.base_url,
        CXONE_CLIENT_ID=CLIENT_ID,
        CXONE_CLIENT_SECRET=CLIENT_SECRET,
        **{WEBHOOK_SECRET_ENV: WEBHOOK_SECRET},
        # The tutorial's plain requests calls would otherwise honour a proxy from the environment.
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    if SLOW_FSYNC is not None:
        folder, delay_ms = SLOW_FSYNC
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH")]))
        env["BENCH_FSYNC_DELAY_MS"] = f"{delay_ms:g}"
    return env


# -- the two clients --------------------------------------------------------------


def sinks_doc(audit: Path | None, webhook_url: str | None) -> list[dict[str, Any]]:
    """Both sinks a production policy has: the warehouse webhook and the audit log."""
    sinks: list[dict[str, Any]] = []
    if webhook_url is not None:
        sinks.append({"type": "webhook", "url": webhook_url, "secret_env": WEBHOOK_SECRET_ENV})
    if audit is not None:
        sinks.append({"type": "audit_log", "path": str(audit)})
    return sinks


def policy_doc(
    scenario: Scenario, setting: Setting, audit: Path | None, webhook_url: str | None = None
) -> dict[str, Any]:
    return {
        "version": 1,
        "name": f"throughput-{scenario.key}",
        "connection": {
            "base_url": "embedded",  # CXONE_BASE_URL points the run at the simulator
            "timeout_seconds": 30,
            "max_requests_per_second": setting.max_requests_per_second,
            "max_in_flight": scenario.max_in_flight,
        },
        "campaigns": [{"id": c} for c in scenario.campaign_ids],
        "source": {"page_size": setting.page_size},
        "filters": [
            {"type": "outcome", "approved": list(APPROVED)},
            {"type": "anonymized", "on_violation": "quarantine"},
        ],
        # What the tutorial does: the record's own retentionDays, else 365.
        "transforms": [{"type": "retention", "default_days": 365, "use_record_value": True}],
        "batch": {"max_items": MAX_BATCH, "force_cold_storage": True, "delete_active": True},
        # The retry section is left to its defaults, as a user starting out would.
        "sinks": sinks_doc(audit, webhook_url),
    }


def run_archiver(scenario: Scenario, setting: Setting, work: Path, sinks: bool) -> Outcome:
    work.mkdir(parents=True)
    policy = work / "policy.yaml"
    audit = work / "audit.jsonl" if sinks else None
    report_path = work / "report.json"
    cmd = [sys.executable, "-m", "archiver", "run", str(policy), "--state", str(work / "state"),
           "--report", str(report_path)]
    with simulator(scenario, work / "simulator.log", retry_after=setting.retry_after) as sim:
        webhook = f"{sim.base_url}/_sim/webhooks" if sinks else None
        doc = policy_doc(scenario, setting, audit, webhook)
        policy.write_text(yaml.safe_dump(doc, sort_keys=False))
        measured = measure(cmd, client_env(sim), work / "stdout.txt", work / "stderr.txt")
        outcome = observe(sim, scenario, setting.label, measured, setting.page_size)
        webhooks = sim.get("stats")["webhooks"] if sinks else None
    if measured.exit_code != 0:
        outcome.problems.append(f"exit code {measured.exit_code} (see {work / 'stderr.txt'})")
    if not report_path.exists():
        outcome.problems.append("no run report written")
        return outcome
    report = json.loads(report_path.read_text())
    totals = report["totals"]
    outcome.listed = int(totals["listed"])
    outcome.problems.extend(report_problems(report, scenario))
    if totals["archived"] != outcome.archived:
        outcome.problems.append(
            f"report says {totals['archived']} archived, the simulator's ledger {outcome.archived}"
        )
    if outcome.archived != outcome.eligible:
        outcome.problems.append(f"archived {outcome.archived} of {outcome.eligible} eligible")
    if webhooks is not None:
        outcome.problems.extend(webhook_problems(report, webhooks))
    return outcome


def webhook_problems(report: dict[str, Any], received: dict[str, int]) -> list[str]:
    """Every webhook event delivered (none pending) and received validly signed, once each."""
    problems = []
    outbox = {sink: n for sink, n in report["outbox"].items() if sink.startswith("webhook")}
    delivered = sum(n["delivered"] for n in outbox.values())
    pending = sum(n["pending"] + n["disabled"] for n in outbox.values())
    if not outbox or pending:
        problems.append(f"{pending} webhook event(s) not delivered")
    if received["invalid"]:
        problems.append(f"{received['invalid']} webhook(s) with a bad signature")
    if received["unique_accepted"] != delivered:
        problems.append(
            f"{delivered} webhook events delivered, the receiver accepted {received['unique_accepted']}"
        )
    return problems


def report_problems(report: dict[str, Any], scenario: Scenario) -> list[str]:
    """Counts that do not add up: per campaign and in total, final states against listed."""
    states = ("archived", "skipped", "quarantined", "failed")
    problems = []
    for row in [*report["campaigns"], {"id": "totals", **report["totals"]}]:
        if row["listed"] != sum(row[s] for s in states):
            problems.append(f"{row['id']}: listed {row['listed']} != sum of final states")
    served = scenario.campaigns * scenario.attempts
    if report["totals"]["listed"] != served:
        problems.append(f"listed {report['totals']['listed']} of {served} attempts served")
    return problems


def run_tutorial(scenario: Scenario, work: Path) -> Outcome:
    work.mkdir(parents=True)
    with simulator(scenario, work / "simulator.log") as sim:
        cmd = [sys.executable, str(TUTORIAL), *scenario.campaign_ids,
               "--callback-url", f"{sim.base_url}/_sim/webhooks",
               "--audit-log", str(work / "audit.jsonl")]
        measured = measure(cmd, client_env(sim), work / "stdout.txt", work / "stderr.txt")
        outcome = observe(sim, scenario, "tutorial", measured, TUTORIAL_PAGE_SIZE)
    lines = (work / "stdout.txt").read_text().splitlines()
    if measured.exit_code != 0 or not lines:
        outcome.problems.append(f"exit code {measured.exit_code} (see {work / 'stderr.txt'})")
        return outcome
    summary = json.loads(lines[-1])
    outcome.listed = int(summary["fetched"])
    if summary["archived"] != outcome.archived:
        outcome.problems.append(
            f"it counted {summary['archived']} archived, the simulator's ledger {outcome.archived}"
        )
    # requests' messages name the URL; without it, the same failure reads the same.
    reasons = Counter(why.split(" for url:")[0][:100] for why in summary["aborted"].values())
    for why, n in reasons.items():
        outcome.notes.append(f"{n} of {scenario.campaigns} campaign(s) aborted: {why}")
    # Clean data and no rate limit: as written (keys fixed) it archives everything.
    if scenario.rate_limit is None and outcome.archived != outcome.eligible:
        outcome.problems.append(f"archived {outcome.archived} of {outcome.eligible} eligible")
    return outcome


def observe(
    sim: SimProcess, scenario: Scenario, label: str, measured: Measured, page_size: int
) -> Outcome:
    """What the simulator saw; problems when an attempt was archived twice or wrongly."""
    stats = sim.get("stats")
    ledger: dict[str, int] = sim.get("ledger")["attempts"]
    eligible: set[str] = set()
    needed = 1
    for campaign_id in scenario.campaign_ids:
        ids = sim.get("eligible", campaign=campaign_id, approved=",".join(APPROVED))["ids"]
        eligible.update(ids)
        needed += scenario.attempts // page_size + 1 + -(-len(ids) // MAX_BATCH)
    outcome = Outcome(
        label=label,
        wall=measured.wall,
        rss_mb=measured.rss_mb,
        exit_code=measured.exit_code,
        cpu=measured.cpu,
        api_requests=int(stats["total_requests"]),  # /_sim/ calls are not counted
        needed=needed,
        rate_limited=int(stats["rate_limited"]),
        # Less the one this function opened to read the stats.
        connections=int(stats["connections_opened"]) - 1,
        archived=len(ledger),
        eligible=len(eligible),
    )
    if scenario.rate_limit:  # the log holds every body: read only in (b), a few hundred calls
        outcome.sustained = sustained_rate(
            [e["at"] for e in sim.get("requests") if not e["path"].startswith("/_sim/")]
        )
    twice = sum(1 for n in ledger.values() if n > 1)
    if twice or stats["double_archived"]:
        outcome.problems.append(f"{max(twice, stats['double_archived'])} attempts archived twice")
    stray = len(set(ledger) - eligible)
    if stray:
        outcome.problems.append(f"{stray} ineligible attempts archived")
    return outcome


def sustained_rate(arrivals: Sequence[float], skip: float = BURST_SECONDS) -> float | None:
    """Calls per second from ``skip`` seconds after the first call to the last one: a
    rate the server's initial burst cannot inflate."""
    if not arrivals:
        return None
    start = min(arrivals) + skip
    end = max(arrivals)
    later = sum(1 for t in arrivals if t > start)
    return later / (end - start) if end - start >= 1.0 and later > 1 else None


def repeated(times: int, run: Callable[[Path], Outcome], work: Path) -> Outcome:
    """``run`` ``times`` times, each against a fresh simulator: the median run by wall time
    stands for all (its figures are the ones printed), with every run's wall time kept,
    the highest peak RSS, and every run's problems."""
    outcomes = [run(work / f"run-{n}") for n in range(1, times + 1)]
    median = sorted(outcomes, key=lambda o: o.wall)[len(outcomes) // 2]
    median.walls = [o.wall for o in outcomes]
    median.rss_mb = max(o.rss_mb for o in outcomes)
    median.problems = [
        f"run {n}: {problem}" if times > 1 else problem
        for n, o in enumerate(outcomes, start=1)
        for problem in o.problems
    ]
    median.notes = list(dict.fromkeys(note for o in outcomes for note in o.notes))
    return median


# -- printing -------------------------------------------------------------------

Cells = Callable[[Outcome], list[str]]
COMMON = ["client", "wall s", "runs s", "CPU s", "API calls", "needed", "connections", "429s",
          "archived/eligible", "peak RSS MB"]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def spread(walls: Sequence[float]) -> str:
    """Every run's wall time, lowest to highest."""
    return "/".join(f"{w:.2f}" for w in sorted(walls))


def met(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def print_outcomes(outcomes: Sequence[Outcome], extra: Sequence[str], cells: Cells) -> None:
    rows = [
        [o.label, f"{o.wall:.2f}", spread(o.walls), f"{o.cpu:.2f}", f"{o.api_requests:,}", f"{o.needed:,}", f"{o.connections:,}",
         f"{o.rate_limited:,}", f"{o.archived:,}/{o.eligible:,}", f"{o.rss_mb:.0f}", *cells(o)]
        for o in outcomes
    ]
    print(table([*COMMON, *extra], rows))
    for o in outcomes:
        verdict = "ok" if not o.problems else "FAILED: " + "; ".join(o.problems)
        print(f"  correctness, {o.label}: {verdict}")
        for note in o.notes:
            print(f"    note: {note}")


def describe(s: Scenario, sinks: bool) -> str:
    limit = f"{s.rate_limit:g} requests/s" if s.rate_limit else "none"
    pages = ", ".join(sorted({f"{st.page_size}" for st in s.settings}, key=int))
    ceilings = ", ".join(sorted({f"{st.max_requests_per_second:g}" for st in s.settings}, key=float))
    return (
        f"({s.key}) {s.title}: {s.campaigns} campaign(s) x {s.attempts:,} attempts, "
        f"latency {s.latency_ms:g} ms, rate limit {limit}\n"
        f"    archiver: max_in_flight {s.max_in_flight}, page_size {pages}, "
        f"max_requests_per_second {ceilings}, batch max_items {MAX_BATCH}, retry defaults, "
        f"sinks: {'webhook + audit_log' if sinks else 'none'}\n"
        f"    tutorial: sequential, pages of {TUTORIAL_PAGE_SIZE}"
    )


Results = list[tuple[str, bool]]


def correct(key: str, outcomes: Sequence[Outcome]) -> Results:
    return [(f"({key}) {o.label}: correct", not o.problems) for o in outcomes]


def scenario_a(s: Scenario, work: Path, sinks: bool, times: int) -> Results:
    tutorial = repeated(times, lambda w: run_tutorial(s, w), work / "tutorial")
    runs = [
        repeated(times, lambda w, st=st: run_archiver(s, st, w, sinks), work / f"archiver-{st.page_size}")
        for st in s.settings
    ]
    print_outcomes([tutorial, *runs], ["x faster"], lambda o: [f"{tutorial.wall / o.wall:.1f}"])
    results = []
    for o in runs:
        ratio = tutorial.wall / o.wall
        print(f"  {o.label}: {ratio:.1f}x the tutorial's speed, target >= 8x: {met(ratio >= 8)}")
        results.append((f"(a) {o.label}: >= 8x faster than the tutorial", ratio >= 8))
    budget = tutorial.wall / 8
    packages = startup(STARTUP_PACKAGES, times, work / "startup")
    command = startup(STARTUP_COMMAND, times, work / "startup")
    print(f"  8x needs a run of at most {budget:.2f} s. Start-up before the first request, "
          f"a fresh interpreter, median of {times}: importing the chosen packages "
          f"{packages:.2f} s ({packages / budget:.0%} of it), everything `archiver run` "
          f"imports {command:.2f} s ({command / budget:.0%})")
    calls = tutorial.needed
    floor = bare_floor(s, calls, times, work / "floor")
    print(f"  The floor, median of {times}: a client importing the chosen packages but rich, then making "
          f"the {calls} calls a page_size {TUTORIAL_PAGE_SIZE} run needs, {s.max_in_flight} at "
          f"a time, and doing nothing with the answers, takes {floor:.2f} s "
          f"({floor / budget:.0%} of the budget; {tutorial.wall / floor:.1f}x the tutorial)")
    return results + correct("a", [tutorial, *runs])


# What a run imports before its first request: the packages the project chose, and
# everything the run command loads (them included).
STARTUP_PACKAGES = ("import pydantic, pydantic_settings, yaml, requests, jinja2, jsonschema, "
                    "click, rich.console, rich.table")
STARTUP_COMMAND = "import archiver.commands.run"
# What the floor imports before its first call: the chosen packages a run needs before it
# may send anything (reading and validating the policy, compiling its templates, the
# command line, HTTP). rich only prints, so a client could load it later, while it waits
# on the network: the floor leaves it out, the lower for it.
FLOOR_PACKAGES = "import pydantic, pydantic_settings, yaml, requests, jinja2, jsonschema, click"


# The least any client with the chosen packages can take for scenario (a)'s work: a
# fresh interpreter imports them (FLOOR_PACKAGES), takes a token, then makes the rest of the calls a run
# needs, ``max_in_flight`` at a time over kept-alive connections, and does nothing with
# the answers. The calls are listing pages (the simulator holds every API answer back
# by the same latency, an archive call's too), so the figure is for any mix of them.
_BARE_CLIENT = """
import sys, threading
{packages}
base, client_id, secret, in_flight, calls, page = sys.argv[1:7]
campaigns = sys.argv[7].split(",")
in_flight, calls, page = int(in_flight), int(calls), int(page)
form = {{"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}}
answer = requests.post(base + "/oauth/token", data=form, timeout=30)
answer.raise_for_status()
headers = {{"Authorization": "Bearer " + answer.json()["access_token"]}}
urls = [
    f"{{base}}/api/v2/campaigns/{{campaigns[n % len(campaigns)]}}/attempts"
    f"?status=completed&limit={{page}}&offset={{(n // len(campaigns)) * page}}"
    for n in range(calls - 1)
]
failed = []
def work(lane):
    with requests.Session() as session:
        for url in urls[lane::in_flight]:
            got = session.get(url, headers=headers, timeout=30)
            if got.status_code != 200:
                failed.append(f"{{got.status_code}} for {{url}}")
lanes = [threading.Thread(target=work, args=(n,)) for n in range(in_flight)]
for lane in lanes:
    lane.start()
for lane in lanes:
    lane.join()
if failed:
    sys.exit(f"{{len(failed)}} call(s) failed, the first: {{failed[0]}}")
"""


def bare_floor(s: Scenario, calls: int, times: int, work: Path) -> float:
    """The median wall time, spawn to exit, of ``_BARE_CLIENT`` making ``calls`` calls
    (a token and page-size-100 listing pages), each time against a fresh simulator."""
    work.mkdir(parents=True, exist_ok=True)
    code = _BARE_CLIENT.format(packages=FLOOR_PACKAGES)
    walls = []
    for n in range(times):
        with simulator(s, work / f"simulator-{n}.log") as sim:
            cmd = [sys.executable, "-c", code, sim.base_url, CLIENT_ID, CLIENT_SECRET,
                   str(s.max_in_flight), str(calls), str(TUTORIAL_PAGE_SIZE),
                   ",".join(s.campaign_ids)]
            measured = measure(cmd, client_env(sim), work / "stdout.txt", work / "stderr.txt")
            served = int(sim.get("stats")["total_requests"])
        if measured.exit_code != 0 or served != calls:
            raise RuntimeError(f"the bare client failed ({served} of {calls} calls served); "
                               f"see {work / 'stderr.txt'}")
        walls.append(measured.wall)
    return sorted(walls)[len(walls) // 2]


def startup(code: str, times: int, work: Path) -> float:
    """The median wall time, spawn to exit, of a fresh interpreter running ``code``
    (with the garbage collector off, as ``archiver``'s entry point starts)."""
    work.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-c", f"import gc; gc.disable(); {code}"]
    walls = []
    for _ in range(times):
        measured = measure(cmd, dict(os.environ), work / "stdout.txt", work / "stderr.txt")
        if measured.exit_code != 0:
            raise RuntimeError(f"{code!r} failed; see {work / 'stderr.txt'}")
        walls.append(measured.wall)
    return sorted(walls)[len(walls) // 2]


def scenario_b(s: Scenario, work: Path, sinks: bool, times: int) -> Results:
    assert s.rate_limit is not None
    limit = s.rate_limit
    outcomes = [repeated(times, lambda w: run_tutorial(s, w), work / "tutorial")]
    outcomes += [
        repeated(
            times,
            lambda w, st=st: run_archiver(s, st, w, sinks),
            work / f"archiver-{st.max_requests_per_second:g}{'' if st.retry_after else '-no-retry-after'}",
        )
        for st in s.settings
    ]
    print_outcomes(
        outcomes, ["requests/s", "sustained/s", "of limit", "429 share", "needed/s"], lambda o: [
            f"{o.requests_per_second:.1f}",
            "-" if o.sustained is None else f"{o.sustained:.1f}",
            "-" if o.sustained is None else f"{o.sustained / limit:.0%}",
            f"{o.share_429:.1%}",
            # Only a run that did the whole job did the needed calls.
            f"{o.needed / o.wall:.1f}" if o.archived == o.eligible else "-",
        ],
    )
    results = []
    for o in outcomes[1:]:
        ok = o.sustained is not None and o.sustained >= 0.9 * limit and o.share_429 < 0.02
        print(f"  {o.label}: target >= {0.9 * limit:g} sustained requests/s with < 2 % 429s: "
              f"{met(ok)}")
        results.append((f"(b) {o.label}: >= 90 % of the limit sustained, < 2 % 429s", ok))
    return results + correct("b", outcomes)


def scenario_c(s: Scenario, work: Path, sinks: bool, times: int) -> Results:
    tutorial = repeated(times, lambda w: run_tutorial(s, w), work / "tutorial")
    archiver = repeated(times, lambda w: run_archiver(s, s.settings[0], w, sinks), work / "archiver")
    print_outcomes([tutorial, archiver], ["attempts/s"], lambda o: [f"{o.listed / o.wall:,.0f}"])
    rate, rss = archiver.listed / archiver.wall, archiver.rss_mb
    print(f"  {archiver.label}: {rate:,.0f} attempts/s, target >= 20,000: {met(rate >= 20_000)}; "
          f"peak RSS {rss:.0f} MB, target < 150 MB: {met(rss < 150)}")
    return [("(c) >= 20,000 attempts/s", rate >= 20_000), ("(c) peak RSS < 150 MB", rss < 150),
            *correct("c", [tutorial, archiver])]


SCENARIOS: dict[str, Callable[[Scenario, Path, bool, int], Results]] = {
    "a": scenario_a, "b": scenario_b, "c": scenario_c,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenario", default="a,b,c", help="Comma-separated: a, b, c.")
    parser.add_argument("--quick", action="store_true", help="Small sizes, for a smoke run.")
    parser.add_argument("--no-sinks", action="store_true",
                        help="Run archiver without its webhook and audit log sinks.")
    parser.add_argument("--fsync-delay-ms", type=float, default=0.0, metavar="MS",
                        help="Make every fsync of the clients MS slower (a slow disk).")
    parser.add_argument("--keep", action="store_true", help="Keep the working folder (logs, state).")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="Run every client N times (default 3); the median run is reported.")
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.scenario.split(",") if k.strip()]
    unknown = sorted(set(keys) - set(SCENARIOS))
    if unknown or not keys:
        parser.error(f"--scenario takes a, b and c, not {args.scenario!r}")
    if args.repeat < 1:
        parser.error("--repeat takes 1 or more")
    if args.fsync_delay_ms < 0:
        parser.error("--fsync-delay-ms takes 0 or more")
    sizes = QUICK if args.quick else FULL
    sinks = not args.no_sinks
    work = Path(tempfile.mkdtemp(prefix="archiver-throughput-"))
    global SLOW_FSYNC
    if args.fsync_delay_ms:
        (work / "slow-fsync").mkdir()
        (work / "slow-fsync" / "sitecustomize.py").write_text(_SLOW_FSYNC)
        SLOW_FSYNC = (work / "slow-fsync", args.fsync_delay_ms)
    if not compileall.compile_dir(REPO / "archiver", quiet=1):
        print("could not compile archiver's bytecode; start-up times include compiling it")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}" + (" (quick sizes)" if args.quick else "")
          + (f", every fsync {args.fsync_delay_ms:g} ms slower" if args.fsync_delay_ms else ""))
    results: Results = []
    failed = True
    try:
        for key in keys:
            print()
            print(describe(sizes[key], sinks))
            results += SCENARIOS[key](sizes[key], work / key, sinks, args.repeat)
        failed = any(not ok for name, ok in results if name.endswith(": correct"))
    finally:
        if args.keep or failed:
            print(f"\nworking folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print("summary" + (" (quick sizes: the targets are for the full sizes)" if args.quick else "")
          + f"; load average now {os.getloadavg()[0]:.2f}")
    for name, ok in results:
        print(f"  {'yes' if ok else 'NO '}  {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

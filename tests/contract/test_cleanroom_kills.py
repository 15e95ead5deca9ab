"""`archiver run` stopped while archive calls are in flight, against the strict server
that keeps no idempotency keys, then run again until it finishes.

A run is killed (SIGKILL) or asked to stop (SIGTERM) at an exact point the server
sees: when its n-th archive call arrives (other calls still in flight behind the
server's latency), when an archive call has taken effect and its answer is about to
go, or while the run lists a campaign again to settle archive calls whose answer was
lost. Its rerun may be stopped too. Then runs go on without stopping until one exits
0, with the same faults, and the server's ledger must show every eligible attempt
archived exactly once and nothing else; one more run archives nothing, and the
dialing campaign is left ACTIVE.

Every scenario loses archive answers after they took effect (502, or the connection
closed unanswered), and every one stopped at an archive or list call leaves batches
open that took effect: a client or an engine that sent a batch again blind, without
looking at the listing first, would archive its attempts twice here.

The last test checks the rerun's report against the server: attempts of a dead run's
batch that the rerun found gone from the listing are counted `reconciled`, not as
archived by the rerun's own calls nor as listed by it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.contract._cleanroom_server import Arrival, Faults, StrictServer
from tests.contract.test_cleanroom_server import (
    CLIENT_ID,
    CLIENT_SECRET,
    DIALING,
    ELIGIBLE,
    WEBHOOK_KEY,
    Run,
    Setup,
    assert_archived_exactly_the_eligible,
    assert_bodies_carry_the_records,
    assert_one_signed_event_per_batch,
    assert_rerun_archives_nothing,
    start_server,
    write_policy,
)

RUN_TIMEOUT = 45
# Smaller batches than the conformance test's: some 30 archive calls a run, four at a
# time, so a stop finds several in flight.
MAX_ITEMS = 25
FINISHING_RUNS = 4  # runs without a stop, at most, until one exits 0


@dataclass
class Stop:
    """Where to stop one run: the ``n``-th call to ``endpoint`` of that run, at
    ``stage`` ("arrived": before the server does anything with it; "answering": its
    answer decided). Archive calls are counted when they arrive only for the campaigns
    that do not dial (the dialing one's may be refused 409), and when they are answered
    only if they took effect (their attempts are in the ledger). ``after_lost``: count
    only calls about a campaign one of whose archive answers this run lost (the listing
    that settles lost answers)."""

    signum: int
    n: int
    endpoint: str = "archive"
    stage: str = "arrived"
    after_lost: bool = False
    # Count only calls that arrive while at least this many other archive calls of the
    # run are in the server's hands (arrived, not yet answered).
    in_flight: int = 0
    # Seconds after which the signal is sent a second time (a stopping run that is
    # signalled again skips resuming the campaigns it paused); None: once.
    again: float | None = None

    def __str__(self) -> str:
        name = signal.Signals(self.signum).name
        what = "list call settling lost answers" if self.after_lost else f"{self.endpoint} call"
        busy = f", {self.in_flight}+ others in flight" if self.in_flight else ""
        twice = f", again {self.again:g} s later" if self.again is not None else ""
        return f"{name} at {what} #{self.n} ({self.stage}{busy}{twice})"


@dataclass
class Trigger:
    """Watches the server's calls (StrictServer.on_call) during one run and, given a
    stop, sends its signal once, from the serving thread, before the call goes on. A
    SIGKILL is waited for: the call then goes on with its client dead."""

    stop: Stop | None
    proc: subprocess.Popen[bytes]
    base: int  # calls of the stop's endpoint that arrived before this run
    dialing: str = DIALING
    lost_in: Counter[str] = field(default_factory=Counter)  # campaign -> answers lost
    archiving: set[int] = field(default_factory=set)  # archive calls arrived, not answered
    in_flight_at_stop: int = 0
    # Archive calls that took effect and were answered once the signal had gone (the
    # call that set it off included): their batches were left open for a rerun.
    unread_effects: int = 0
    seen: int = 0
    fired: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, call: Arrival) -> None:
        with self.lock:
            if call.endpoint == "archive" and call.stage == "arrived":
                self.archiving.add(call.n)
            elif call.endpoint == "archive":
                self.archiving.discard(call.n)
                if call.took_effect and call.status != 200 and call.campaign is not None:
                    self.lost_in[call.campaign] += 1
            if not self._due(call):
                if self.fired.is_set() and call.endpoint == "archive" and call.took_effect:
                    self.unread_effects += 1
                return
            self.fired.set()
            self.unread_effects += call.took_effect
            if self.stop is not None and self.stop.after_lost and call.campaign is not None:
                # The batches whose answers were lost wait for this listing to be settled.
                self.unread_effects += self.lost_in[call.campaign]
        stop = self.stop
        assert stop is not None
        self.proc.send_signal(stop.signum)
        if stop.signum == signal.SIGKILL:
            self.proc.wait(timeout=10)
        elif stop.again is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=stop.again)
            if self.proc.poll() is None:
                self.proc.send_signal(stop.signum)

    def _due(self, call: Arrival) -> bool:
        """Whether this call is where the run stops (under the lock)."""
        stop = self.stop
        if stop is None or self.fired.is_set():
            return False
        if call.endpoint != stop.endpoint or call.stage != stop.stage or call.n <= self.base:
            return False  # not the kind of call, or one of an earlier run still on its way
        if call.endpoint == "archive" and call.stage == "answering" and not call.took_effect:
            return False  # refused (409, 429, 503): not a call that took effect
        if call.endpoint == "archive" and call.stage == "arrived" and call.campaign == self.dialing:
            return False  # the dialing campaign's may be refused 409: not counted
        if stop.after_lost and call.campaign not in self.lost_in:
            return False
        others = len(self.archiving - {call.n} if call.endpoint == "archive" else self.archiving)
        if others < stop.in_flight:
            return False
        self.seen += 1
        if self.seen != stop.n:
            return False
        self.in_flight_at_stop = others
        return True

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until the server is done with every archive call of the run."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.archiving:
                    return
            time.sleep(0.01)
        raise AssertionError(f"archive calls {sorted(self.archiving)} never answered")


@dataclass
class KillSetup:
    server: StrictServer
    policy: Path
    state: Path
    tmp: Path
    runs: int = 0

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CXONE_", "ARCHIVER_")) and "PROXY" not in k.upper()
        }
        return env | {
            "CXONE_CLIENT_ID": CLIENT_ID,
            "CXONE_CLIENT_SECRET": CLIENT_SECRET,
            "CLEANROOM_WEBHOOK_SECRET": "whsec_" + base64.b64encode(WEBHOOK_KEY).decode(),
        }

    def run(self, stop: Stop | None = None) -> tuple[int, Run | None, Trigger]:
        """One `archiver run`, stopped at ``stop`` if given; its exit code, its report
        (None when it wrote none, as after a SIGKILL) and what the trigger saw."""
        self.runs += 1
        self.server.reset_listed()
        report = self.tmp / f"report-{self.runs}.json"
        output = self.tmp / f"output-{self.runs}.txt"
        archiver = Path(sys.executable).with_name("archiver")
        command = [
            str(archiver),
            "run",
            str(self.policy),
            "--state",
            str(self.state),
            "--report",
            str(report),
            "--quiet",
        ]
        with output.open("wb") as out:
            proc = subprocess.Popen(
                command, env=self.env(), cwd=self.tmp, stdout=out, stderr=subprocess.STDOUT
            )
            base = self.server.arrivals(stop.endpoint) if stop is not None else 0
            trigger = Trigger(stop, proc, base)
            self.server.on_call = trigger
            try:
                code = proc.wait(timeout=RUN_TIMEOUT)
                # What a stopped run left in the server's hands lands before anything
                # else is looked at or run.
                trigger.drain()
            finally:
                self.server.on_call = None
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        text = output.read_text(errors="replace")
        if stop is not None:
            assert trigger.fired.is_set(), f"the run ended before {stop} (exit {code}):\n{text}"
        parsed = json.loads(report.read_text()) if report.exists() else None
        return code, (Run(code, parsed, text) if parsed is not None else None), trigger

    def as_setup(self) -> Setup:
        """The conformance test's Setup on the same server and state, for its rerun check."""
        return Setup(self.server, self.policy, self.state, self.tmp, runs=self.runs + 100)


@pytest.fixture
def kill_setup(tmp_path: Path) -> Iterator[Any]:
    servers: list[StrictServer] = []

    def make(faults: Faults) -> KillSetup:
        server = start_server(faults)
        servers.append(server)
        policy = write_policy(tmp_path / "policy" / "cleanroom.yaml", server)
        text = policy.read_text()
        assert "max_items: 200" in text
        policy.write_text(text.replace("max_items: 200", f"max_items: {MAX_ITEMS}"))
        return KillSetup(server, policy, tmp_path / "state", tmp_path)

    yield make
    for server in servers:
        server.on_call = None
        server.stop()


# -- the scenarios ---------------------------------------------------------------

KILL, TERM = signal.SIGKILL, signal.SIGTERM


@dataclass(frozen=True)
class Scenario:
    faults: Faults
    stops: tuple[Stop, ...]  # one per stopped run, in order


# How many archive calls of a run arrive with two others in flight depends on how fast
# the client forms its batches, not only on the server: of some 36, 9 to 16 on an idle
# two-core machine, 7 to 12 with busy CPU loops beside the run. A stop needing two in
# flight is therefore placed at the 4th such call at the latest, so that a slow machine
# still reaches it.
SCENARIOS = {
    # Killed as an archive call arrives with two more behind the server's latency: the
    # server archives all three for a dead client, and the rerun finds them gone from
    # its listing.
    "SIGKILL at the 3rd archive call, 2 more in flight, 502s": Scenario(
        Faults(lost_answer_share=0.3, latency=0.04, seed=3),
        (Stop(KILL, 3, in_flight=2),),
    ),
    "SIGKILL at the 4th archive call, 2 more in flight, dropped answers": Scenario(
        Faults(lost_answer_share=0.3, lost_answer="drop", latency=0.04, seed=11),
        (Stop(KILL, 4, in_flight=2),),
    ),
    # The batch took effect and the run died before it read the answer.
    "SIGKILL as the 5th archive call took effect, drops and 503s": Scenario(
        Faults(lost_answer_share=0.3, lost_answer="drop", unavailable_share=0.2, seed=5),
        (Stop(KILL, 5, stage="answering"),),
    ),
    # The rerun resends the open batches still listed whole before it forms new ones: it
    # dies as its first archive call takes effect, and the run after it must find that
    # batch gone, beside those the first run left.
    "SIGKILL twice: as an archive took effect, then as the rerun's first did": Scenario(
        Faults(lost_answer_share=0.25, rate_limit_share=0.1, latency=0.04, seed=17),
        (Stop(KILL, 4, stage="answering"), Stop(KILL, 1, stage="answering")),
    ),
    # Killed while batches whose answers were lost wait for the re-listing that settles
    # them: they are open in the store, some archived, some not.
    "SIGKILL while re-listing to settle lost answers, 502s and 429s": Scenario(
        Faults(lost_answer_share=0.4, rate_limit_share=0.1, retry_after="0", seed=23),
        (Stop(KILL, 1, endpoint="list", after_lost=True),),
    ),
    # Items a batch reports failed stay listed; the batch's answer says how many, not
    # which: the run dies before the re-listing that tells them apart.
    "SIGKILL as the 6th archive call took effect, partial failures, 502s": Scenario(
        Faults(lost_answer_share=0.3, fail_every=13, latency=0.04, seed=41),
        (Stop(KILL, 6, stage="answering", in_flight=1),),
    ),
    # The dialing campaign is left PAUSED by a dead run: the next one restores it first.
    "SIGKILL as the dialing campaign's pause took effect, 502s and 503s": Scenario(
        Faults(lost_answer_share=0.3, unavailable_share=0.15, latency=0.04, seed=43),
        (Stop(KILL, 1, endpoint="patch", stage="answering"),),
    ),
    # The stopping run resumes the campaign it paused; its rerun dies paused.
    "SIGTERM as the pause took effect, then SIGKILL of the rerun as its pause did": Scenario(
        Faults(lost_answer_share=0.3, lost_answer="drop", latency=0.04, seed=47),
        (
            Stop(TERM, 1, endpoint="patch", stage="answering"),
            Stop(KILL, 1, endpoint="patch", stage="answering"),
        ),
    ),
    # Signalled again while it stops, the run may leave the campaign paused.
    "SIGTERM twice at the 4th archive call, 2 more in flight, 502s": Scenario(
        Faults(lost_answer_share=0.3, latency=0.04, seed=53),
        (Stop(TERM, 4, in_flight=2, again=0.02),),
    ),
    # The stopping run cuts the calls in flight; the server archives them all the same.
    "SIGTERM at the 4th archive call, 2 more in flight, dropped answers": Scenario(
        Faults(lost_answer_share=0.3, lost_answer="drop", latency=0.04, seed=29),
        (Stop(TERM, 4, in_flight=2),),
    ),
    "SIGTERM while re-listing to settle lost answers, then SIGKILL of the rerun": Scenario(
        Faults(lost_answer_share=0.4, unavailable_share=0.1, latency=0.02, seed=31),
        (Stop(TERM, 1, endpoint="list", after_lost=True), Stop(KILL, 2, stage="answering")),
    ),
}


@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_stopped_runs_then_reruns_archive_every_eligible_attempt_once(
    kill_setup: Any, scenario: Scenario
) -> None:
    s: KillSetup = kill_setup(scenario.faults)
    server = s.server

    unread = 0
    for stop in scenario.stops:
        code, run, trigger = s.run(stop)
        assert trigger.in_flight_at_stop >= stop.in_flight
        unread += trigger.unread_effects
        twice = {i: n for i, n in server.ledger.items() if n != 1}
        assert not twice, f"after {stop}: archived more than once: {sorted(twice.items())[:10]}"
        if stop.signum == KILL:
            assert code == -signal.SIGKILL, code
            continue
        # A stopped run ends on its own: interrupted, exit 1, its report written, and the
        # campaign it paused dialing again, unless the one try a stopping run gives its
        # resume was refused (429, 503): then it says so, and the next run restores it.
        assert run is not None, f"no report after {stop}"
        assert code == 1, run.output
        assert run.report["interrupted"] is True, run.report
        if server.campaigns[DIALING].status != "ACTIVE" and stop.again is None:
            last = server.calls("patch")[-1]
            assert last.status in (429, 503), server.campaigns[DIALING].patches
            assert "could not resume dialing (the next run will)" in run.output, run.output
    # Left for the reruns: attempts not archived yet, or batches that took effect with
    # no process left to read their answers (a stop at the settling re-listing comes
    # once every batch went out, often all of them archived), which they reconcile.
    assert ELIGIBLE - set(server.ledger) or unread, "the stops left nothing for the reruns to do"
    if any(stop.endpoint != "patch" for stop in scenario.stops):
        # Batches that took effect and whose answer no living run read: a rerun must find
        # them gone from its listing, not send them again.
        assert unread, "no stop left a batch open after it took effect"

    codes: list[int] = []
    for _ in range(FINISHING_RUNS):
        code, finished, _ = s.run()
        codes.append(code)
        assert finished is not None, f"no report (exit {code})"
        if code == 0:
            break
    assert finished is not None
    assert codes[-1] == 0, f"no run finished: exit codes {codes}\n{finished.output}"

    lost = [e for e in server.calls("archive") if e.status in (0, 502)]
    assert lost, "no archive answer was lost: a blind resend would not show"
    assert_archived_exactly_the_eligible(server)
    assert_bodies_carry_the_records(server)
    totals = finished.report["totals"]
    assert totals["failed"] == 0, totals
    states = ("archived", "skipped", "quarantined", "failed", "held", "pending")
    assert sum(totals[k] for k in states) == totals["listed"], totals
    assert_one_signed_event_per_batch(server)

    dialing = server.campaigns[DIALING]
    assert dialing.status == "ACTIVE", dialing.patches
    # A run killed between recording a pause and sending it leaves the rerun to restore a
    # campaign that never stopped: an ACTIVE before the first PAUSED is that restore.
    assert dialing.patches[-1] == "ACTIVE" and "PAUSED" in dialing.patches, dialing.patches
    for cid, campaign in server.campaigns.items():
        if cid != DIALING:
            assert campaign.patches == [], (cid, campaign.patches)

    assert_rerun_archives_nothing(s.as_setup())
    assert Counter(server.ledger.values()) == Counter({1: len(ELIGIBLE)})


def test_a_rerun_counts_as_its_own_only_what_its_calls_archived(kill_setup: Any) -> None:
    # README, "Run visibility": archived_in_this_run "counts the archive calls this run
    # made itself, apart from attempts an earlier run archived"; the report's counts add
    # up to the number listed.
    s: KillSetup = kill_setup(Faults(latency=0.04, seed=3))
    server = s.server
    code, _, trigger = s.run(Stop(KILL, 2, stage="answering"))
    assert code == -signal.SIGKILL and trigger.unread_effects >= 1
    before = sum(server.ledger.values())
    with contextlib.closing(sqlite3.connect(s.state / "state.db")) as db:
        [(recorded,)] = db.execute("SELECT count(*) FROM attempts WHERE state = 'archived'")
    assert recorded < before  # the kill left archived attempts unrecorded

    code, run, _ = s.run()
    assert code == 0 and run is not None, run
    assert_archived_exactly_the_eligible(server)
    made = sum(server.ledger.values()) - before
    assert run.report["archived_in_this_run"] == made, (run.report["archived_in_this_run"], made)
    assert run.report["totals"]["listed"] == len(server.listed_ids), run.report["totals"]
    # What the killed run's calls archived and it never recorded: the rest of the ledger.
    assert run.report["totals"]["reconciled"] == before - recorded, run.report["totals"]

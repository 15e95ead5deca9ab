"""End to end: SIGTERM and SIGINT stop a run within seconds, whatever the server does,
and the next run finishes the work exactly."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archiver.simulator import Faults
from tests.support import APPROVED, REPO, policy_dict, read_report, run_cli, sim_env, write_policy

CAMPAIGN = "ffffffff-0000-4000-8000-000000000006"
# However the machine is loaded, a stop takes seconds, not the 50 s wait for the rate
# limiter or a hung call's 60 s timeout it would otherwise sit out.
STOPS_WITHIN = 30


def start_run(
    policy: Path, state: Path, report: Path, env: dict[str, str], stderr: Path
) -> subprocess.Popen[str]:
    """``archiver run`` in the background; its log lines go to ``stderr`` as they come."""
    args = [sys.executable, "-m", "archiver", "run", str(policy), "--state", str(state),
            "--report", str(report)]
    with stderr.open("w") as err:
        return subprocess.Popen(
            args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True
        )


def wait_for(
    condition, proc: subprocess.Popen[str], what: str, log: Path, limit: float = 60
) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}: {log.read_text()[-3000:]}"
        if time.monotonic() >= deadline:
            proc.kill()
            raise AssertionError(f"never: {what}\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[str], signum: int, stderr: Path) -> tuple[float, str, str]:
    sent = time.monotonic()
    proc.send_signal(signum)
    try:
        stdout, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(
            f"signal {signum} did not stop the run\n{stderr.read_text()[-3000:]}"
        ) from None
    return time.monotonic() - sent, stdout, stderr.read_text()


def test_sigterm_abandons_hung_calls_reports_interrupted_and_a_rerun_finishes_exactly(
    tmp_path, start_sim
):
    # Answers take 250 ms: after the first 40 attempts some thirty calls, two at a time, are
    # still to come, so the run is still going however slowly this test notices.
    sim = start_sim(Faults(latency_ms=250), campaign_ids=[CAMPAIGN], attempts_per_campaign=900,
                    seed=21)
    doc = policy_dict([CAMPAIGN])
    doc["connection"].update(timeout_seconds=60, max_in_flight=2)
    doc["batch"]["max_items"] = 20
    policy = write_policy(tmp_path / "p.yaml", doc)
    state, env, log = tmp_path / "state", sim_env(sim), tmp_path / "r1.err"
    proc = start_run(policy, state, tmp_path / "r1.json", env, log)
    wait_for(lambda: len(sim.ledger()) >= 40, proc, "some attempts were archived", log)
    # From now on every call takes effect and its answer never comes.
    sim.set_faults(Faults(hang_rate=1.0, hang_seconds=300))
    wait_for(lambda: sim.stats()["hangs"] >= 1, proc, "a call hung", log)
    took, stdout, stderr = stop(proc, signal.SIGTERM, log)
    assert took < STOPS_WITHIN, f"took {took:.1f} s to stop\n{stderr[-3000:]}"
    assert proc.returncode == 1, stderr[-3000:]
    report = read_report(tmp_path / "r1.json")
    assert report["interrupted"] is True
    with sqlite3.connect(state / "state.db") as db:
        assert db.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]
    # The summary reads as a stop to resume, not as thousands of failures.
    assert stdout.rstrip().endswith("interrupted; run again to resume"), stdout[-2000:]
    assert f"{CAMPAIGN}: interrupted; run again to resume" in stdout
    assert " failed: " not in stdout
    archived_before = set(sim.ledger())
    eligible = sim.eligible_ids(CAMPAIGN, set(APPROVED))
    assert archived_before < eligible, "stopped part-way"

    sim.set_faults(Faults())
    final = run_cli(["run", str(policy), "--state", str(state), "--report", str(tmp_path / "r2.json")], env)
    assert final.returncode == 0, final.stderr[-3000:]
    assert set(sim.ledger()) == eligible
    assert [a for a, n in sim.ledger().items() if n != 1] == [], "nothing archived twice"
    assert sim.stats()["double_archived"] == 0
    assert read_report(tmp_path / "r2.json")["interrupted"] is False


def test_sigint_ends_a_wait_for_the_rate_limiter(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=50, seed=22)
    doc = policy_dict([CAMPAIGN])
    doc["connection"]["max_requests_per_second"] = 0.02  # one call every 50 s
    policy = write_policy(tmp_path / "p.yaml", doc)
    state, log = tmp_path / "state", tmp_path / "r.err"
    proc = start_run(policy, state, tmp_path / "r.json", sim_env(sim), log)
    # The campaign's thread says it is listing once the run handles signals; its next step
    # is the wait for its turn (the credentials check took the only token).
    wait_for(lambda: f"campaign {CAMPAIGN}: listing" in log.read_text(), proc, "the listing began",
             log)
    # A moment for the main thread to settle into its wait for the campaign: a signal that
    # lands just as it starts that wait is acted on only when the campaign ends (CPython
    # runs handlers in the main thread, and runner._process_campaigns waits without a
    # timeout).
    time.sleep(0.5)
    took, stdout, stderr = stop(proc, signal.SIGINT, log)
    assert took < STOPS_WITHIN, f"took {took:.1f} s to stop\n{stderr[-3000:]}"
    assert read_report(tmp_path / "r.json")["interrupted"] is True
    assert stdout.rstrip().endswith("interrupted; run again to resume"), stdout[-2000:]
    assert sim.ledger() == {}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_before_the_run_has_started_is_one_line_and_130(tmp_path, signum):
    # The first token call hangs (a server that accepts and never answers), so the
    # signal comes while the command starts, before any run is recorded. SIGTERM was a
    # silent death (143); it now ends as Ctrl-C does.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        doc = policy_dict([CAMPAIGN])
        doc["sinks"] = [{"type": "audit_log", "path": "audit/a.jsonl"}]
        # The token call's own timeout must not end the run before the signal comes: on
        # a loaded machine the suite's 5 s was seen to run out first.
        doc["connection"]["timeout_seconds"] = 60
        policy = write_policy(tmp_path / "p.yaml", doc)
        env = sim_env_for(f"http://127.0.0.1:{server.getsockname()[1]}")
        log = tmp_path / "stderr.txt"
        proc = start_run(policy, tmp_path / "state", tmp_path / "r.json", env, log)
        server.settimeout(STOPS_WITHIN)
        conn, _ = server.accept()  # the run is past start-up, waiting for its token
        with conn:
            took, _, stderr = stop(proc, signum, log)
    assert proc.returncode == 130, stderr[-3000:]
    assert took < STOPS_WITHIN
    assert stderr.strip().splitlines()[-1] == "archiver: interrupted"
    assert "Traceback" not in stderr


def sim_env_for(base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    env.update(CXONE_BASE_URL=base_url, CXONE_CLIENT_ID="client",
               CXONE_CLIENT_SECRET="a-client-secret-of-some-length")
    return env

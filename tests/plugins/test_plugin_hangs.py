"""A plugin call that never returns does not keep a run from stopping: SIGTERM stops it
within seconds, recorded, as it does a run whose calls are all archiver's own. The call
is left running (no thread can be interrupted); the run does not wait for it, and a
daemon thread does not keep the process alive.

A filter or transform left so interrupts its campaign's listing (its page is listed again
by the next run); a sink's delivery left so is kept in the outbox, and the next run
delivers it again, before the events after it: at least once, in order."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from archiver.simulator import Simulator
from tests.plugins.misbehaving import SINK
from tests.plugins.test_plugin_results import (
    CAMPAIGN,
    archived_none_pending,
    plugin_env,
    policy,
    run_statuses,
)
from tests.support import APPROVED, REPO, run_cli

STOPPED_WITHIN = 15  # seconds from SIGTERM to exit: the 5 s grace a call gets, and slack


@contextmanager
def _running(
    path: Path, state: Path, env: dict[str, str], report: Path
) -> Iterator[subprocess.Popen[str]]:
    """`archiver run` in a process of its own, killed if the test leaves it running."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "archiver", "run", str(path), "--state", str(state),
         "--report", str(report)],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _wait_for(found: Any, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not found():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the plugin was never called as the test needs"
        time.sleep(0.05)


def _terminate(proc: subprocess.Popen[str]) -> str:
    """SIGTERM; the run's output. It must exit 1 within STOPPED_WITHIN seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=STOPPED_WITHIN)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            f"still running {STOPPED_WITHIN} s after SIGTERM: {err[-2000:]}") from None
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in out + err, err[-3000:]
    return out + err



def _audit_verified(tmp_path: Path) -> None:
    verified = run_cli(["audit", "verify", str(tmp_path / "audit.jsonl"),
                        "--state", str(tmp_path / "state")], {})
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _fixed_then_rerun(path: Path, state: Path, env: dict[str, str], sim: Simulator) -> None:
    """The stage fixed (it returns again), a rerun ends 0 with every eligible attempt
    archived, each once."""
    (path.parent / "fixed").touch()
    again = run_cli(["run", str(path), "--state", str(state)], env)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert set(sim.ledger()) == sim.eligible_ids(CAMPAIGN, set(APPROVED))
    assert set(sim.ledger().values()) == {1}


def _hanging(kind: str, tmp_path: Path, **options: Any) -> dict[str, Any]:
    """The stage, hanging (until `fixed` exists) and making `hanging` as it starts to."""
    return {"type": f"misbehaving_{kind}",
            "options": {"mode": "hang", "fixed": str(tmp_path / "fixed"),
                        "hanging": str(tmp_path / "hanging"), **options}}


def _sink_hanging_stopped(
    tmp_path: Path, env: dict[str, str], mode: str, doing: str, **options: Any
) -> Path:
    """The suite's policy with a sink hanging in ``mode``: its run, stopped by SIGTERM
    within seconds, says the sink did not return from ``doing`` and is recorded
    `interrupted`. The policy's path."""
    state, report = tmp_path / "state", tmp_path / "r.json"
    path = policy(tmp_path)
    sink = _hanging("sink", tmp_path, **options)
    sink["options"]["mode"] = mode
    path.write_text(path.read_text() + "- " + json.dumps(sink) + "\n")
    with _running(path, state, env, report) as proc:
        _wait_for((tmp_path / "hanging").exists, proc)
        out = _terminate(proc)
    assert f"sink plugin '{SINK}' did not return from {doing}" in out, out[-3000:]
    assert run_statuses(state) == ["interrupted"]
    return path


def test_sigterm_stops_a_run_whose_filter_never_returns(tmp_path: Path, start_sim: Any) -> None:
    """Before: the run went on waiting for the filter after SIGTERM, until it was killed."""
    sim: Simulator = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=600, seed=7)
    env, state, report = plugin_env(sim, tmp_path), tmp_path / "state", tmp_path / "r.json"
    path = policy(tmp_path, filters=(_hanging("filter", tmp_path, after=250),))
    with _running(path, state, env, report) as proc:
        _wait_for((tmp_path / "hanging").exists, proc)
        out = _terminate(proc)
    assert "interrupted" in out
    recorded = json.loads(report.read_text())
    [campaign] = recorded["campaigns"]
    assert campaign["status"] == "failed" and "did not return from attempt att-" in (
        campaign["reason"]), campaign["reason"]
    assert "filter plugin 'misbehaving_filter'" in campaign["reason"]
    assert sim.ledger() == {}
    assert run_statuses(state) == ["interrupted"]
    with sqlite3.connect(state / "state.db") as db:
        rows = db.execute("SELECT state, count(*) FROM attempts GROUP BY state").fetchall()
    assert sum(n for _, n in rows) == recorded["totals"]["listed"] > 0
    assert "pending" not in dict(rows)
    _audit_verified(tmp_path)

    _fixed_then_rerun(path, state, env, sim)
    _audit_verified(tmp_path)


def test_sigterm_stops_a_run_whose_sink_never_returns_and_the_next_run_delivers_again(
    tmp_path: Path, start_sim: Any
) -> None:
    """Before: the run went on waiting for the delivery after SIGTERM, until it was
    killed, and was left `running` with no run_finished in the audit log."""
    sim: Simulator = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=600, seed=7)
    env, state = plugin_env(sim, tmp_path), tmp_path / "state"
    log = tmp_path / "delivered.log"
    path = _sink_hanging_stopped(tmp_path, env, "hang", "delivering evt-", after=1,
                                 log=str(log))
    audit = [json.loads(line)["event"] for line in (tmp_path / "audit.jsonl").open()]
    assert audit[0] == "run_started" and audit[-1] == "run_finished"
    _audit_verified(tmp_path)
    with sqlite3.connect(state / "state.db") as db:
        kept = db.execute("SELECT event_id, status FROM outbox WHERE sink LIKE ? ORDER BY seq",
                          (f"{SINK}:%",)).fetchall()
    tried = log.read_text().split()
    assert tried == [kept[0][0], kept[1][0]]  # the first went; the second hangs
    assert [s for _, s in kept] == ["delivered"] + ["pending"] * (len(kept) - 1)

    _fixed_then_rerun(path, state, env, sim)
    delivered = log.read_text().split()[len(tried):]
    # The one left running is delivered again (at least once), then the rest, in order.
    assert delivered[:len(kept) - 1] == [e for e, _ in kept[1:]]
    _audit_verified(tmp_path)


def test_sigterm_stops_a_run_whose_sink_never_returns_from_shaping_an_event(
    tmp_path: Path, start_sim: Any
) -> None:
    """Before: the run went on waiting for the sink's render after SIGTERM, until it was
    killed, with all 395 attempts the API had archived left `pending` and the run
    `running`. Now the batch is recorded and its event kept unrendered for that sink,
    which the next run renders and delivers."""
    sim: Simulator = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=600, seed=7)
    env, state = plugin_env(sim, tmp_path), tmp_path / "state"
    log = tmp_path / "delivered.log"
    path = _sink_hanging_stopped(tmp_path, env, "hang_render",
                                 "shaping a batch_archived event", log=str(log))
    archived = archived_none_pending(state)
    assert archived == set(sim.ledger()) != set()
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").open()]
    assert sorted(a for line in audit if line["event"] == "batch_archived"
                  for a in line["attempt_ids"]) == sorted(archived)
    _audit_verified(tmp_path)

    _fixed_then_rerun(path, state, env, sim)
    with sqlite3.connect(state / "state.db") as db:
        assert {s for (s,) in db.execute(
            "SELECT status FROM outbox WHERE sink LIKE ?", (f"{SINK}:%",))} == {"delivered"}
    _audit_verified(tmp_path)


def test_sigterm_stops_a_run_whose_writer_never_returns_and_the_next_run_reconciles(
    tmp_path: Path, start_sim: Any
) -> None:
    """A sink that keeps the archived records (`write_batch`) and never returns from
    writing the second batch: SIGTERM stops the run within seconds, recorded; that batch
    stays open, and the next run reconciles it with the listing, archiving every eligible
    attempt once, the writer handed every batch it was not given."""
    sim: Simulator = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=600, seed=7)
    env, state = plugin_env(sim, tmp_path), tmp_path / "state"
    path = _sink_hanging_stopped(tmp_path, env, "hang_write", "writing batch", after=1)
    with sqlite3.connect(state / "state.db") as db:
        archived = {a for (a,) in db.execute(
            "SELECT attempt_id FROM attempts WHERE state = 'archived'")}
        open_batches = db.execute(
            "SELECT count(*) FROM batches WHERE status = 'prepared'").fetchone()[0]
    # What the store says was archived, the API did; the batch being written is open.
    assert archived <= set(sim.ledger())
    assert open_batches >= 1
    _audit_verified(tmp_path)

    _fixed_then_rerun(path, state, env, sim)
    assert run_statuses(state) == ["interrupted", "completed"]
    with sqlite3.connect(state / "state.db") as db:
        assert {a for (a,) in db.execute(
            "SELECT attempt_id FROM attempts WHERE state = 'archived'")} == set(sim.ledger())
        assert db.execute("SELECT count(*) FROM batches WHERE status = 'prepared'"
                          ).fetchone() == (0,)
    _audit_verified(tmp_path)

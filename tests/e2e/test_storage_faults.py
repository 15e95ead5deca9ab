"""Storage faults end in one line and exit 74, never a traceback, and lose nothing: a rerun
archives what is left and nothing twice (the simulator's ledger says so).

Faults are real, made without root: a file size limit in the child (RLIMIT_FSIZE, with
SIGXFSZ ignored, so writes past it fail with EFBIG), ``ARCHIVER_FAILPOINT=NAME:N:full``
(the same limit dropped to 0 at a chosen point), a path under a regular file (ENOTDIR),
and, for non-root users only, a folder made read-only.
"""

from __future__ import annotations

import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_crash_recovery import CAMPAIGNS, check_exactly_once, crash_policy
from tests.support import REPO, policy_dict, read_report, run_cli, sim_env, write_policy

EXIT_STORAGE = 74


def file_size_limit(nbytes: int):
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, resource.RLIM_INFINITY))

    return limit


def run_limited(args: list[str], env: dict[str, str], nbytes: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archiver", *args],
        env=env, capture_output=True, text=True, timeout=120, cwd=REPO,
        preexec_fn=file_size_limit(nbytes),
    )


def ends_in_one_line(result: subprocess.CompletedProcess[str], code: int, start: str) -> str:
    """The run ended with ``code`` and its last stderr line starts with ``start``."""
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(start), last
    return last


def open_batches(state: Path) -> int:
    with sqlite3.connect(state / "state.db") as db:
        return int(db.execute("SELECT count(*) FROM batches WHERE status = 'prepared'").fetchone()[0])


def fault_sim(start_sim):
    return start_sim(campaign_ids=CAMPAIGNS, attempts_per_campaign=300, seed=21)


# 250 kB: the store fills while listing; 1 MB: while archiving (its WAL grows past it).
@pytest.mark.parametrize("nbytes", [250_000, 1_000_000], ids=["listing", "archiving"])
def test_a_full_disk_ends_in_one_line_naming_the_state_store_and_a_rerun_finishes(
    tmp_path, start_sim, nbytes
):
    sim = fault_sim(start_sim)
    policy = crash_policy(tmp_path, sim.webhook_url)
    state = tmp_path / "state"
    env = sim_env(sim)
    args = ["run", str(policy), "--state", str(state)]

    full = run_limited(args, env, nbytes)
    last = ends_in_one_line(full, EXIT_STORAGE, f"archiver: error: the state store {state / 'state.db'}: ")
    assert f"free space on the disk holding {state}" in last

    final = run_cli([*args, "--report", str(tmp_path / "report.json")], env)
    assert final.returncode == 0, final.stderr[-3000:]
    read_report(tmp_path / "report.json")
    check_exactly_once(sim, tmp_path, state, env)


def test_the_disk_filling_between_a_post_and_its_answer_loses_nothing(tmp_path, start_sim):
    sim = fault_sim(start_sim)
    policy = crash_policy(tmp_path, sim.webhook_url)
    state = tmp_path / "state"
    env = sim_env(sim)
    args = ["run", str(policy), "--state", str(state)]

    # The second batch is posted and archived; then no file can be written.
    full = run_cli(args, {**env, "ARCHIVER_FAILPOINT": "batch_posted:2:full"})
    ends_in_one_line(full, EXIT_STORAGE, f"archiver: error: the state store {state / 'state.db'}: ")
    assert sim.ledger(), "batches were archived before the disk filled"
    assert open_batches(state) > 0, "sent batches whose answer could not be recorded"

    final = run_cli([*args, "--report", str(tmp_path / "report.json")], env)
    assert final.returncode == 0, final.stderr[-3000:]
    assert open_batches(state) == 0
    read_report(tmp_path / "report.json")
    check_exactly_once(sim, tmp_path, state, env)


def test_a_full_disk_at_the_audit_log_names_the_log_and_a_rerun_completes_its_chain(
    tmp_path, start_sim
):
    sim = start_sim(campaign_ids=CAMPAIGNS[:1], attempts_per_campaign=100, seed=3)
    doc = policy_dict(CAMPAIGNS[:1])
    doc["sinks"] = [{"type": "audit_log", "path": "audit/audit.jsonl"}]
    policy = write_policy(tmp_path / "policy.yaml", doc)
    audit, state = tmp_path / "audit" / "audit.jsonl", tmp_path / "state"
    env = sim_env(sim)
    args = ["run", str(policy), "--state", str(state)]

    full = run_cli(args, {**env, "ARCHIVER_FAILPOINT": "event_delivering:1:full"})
    last = ends_in_one_line(full, EXIT_STORAGE, f"archiver: error: the audit log {audit}: ")
    assert "free space" in last
    assert not audit.exists() or audit.read_bytes() == b"", "no half line left behind"

    final = run_cli(args, env)
    assert final.returncode == 0, final.stderr[-3000:]
    verify = run_cli(["audit", "verify", str(audit), "--state", str(state)], env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert all(n == 1 for n in sim.ledger().values())


def test_a_read_only_state_folder_is_named_with_what_to_do(read_only_view, start_sim):
    # A read-only mount: a mode of 0500 does not stop root, who runs this suite in CI.
    source, view = read_only_view
    sim = start_sim(campaign_ids=CAMPAIGNS[:1], attempts_per_campaign=60)
    policy = write_policy(source / "policy.yaml", policy_dict(CAMPAIGNS[:1]))
    env = sim_env(sim)
    assert run_cli(["run", str(policy), "--state", str(source / "state")], env).returncode == 0
    state = view / "state"
    result = run_cli(["run", str(policy), "--state", str(state)], env)
    last = ends_in_one_line(result, EXIT_STORAGE, "archiver: error: the ")
    assert str(state) in last and "writable" in last, last


def test_a_state_folder_that_cannot_be_created_is_one_line(tmp_path, start_sim):
    sim = start_sim(campaign_ids=CAMPAIGNS[:1], attempts_per_campaign=20)
    policy = write_policy(tmp_path / "policy.yaml", policy_dict(CAMPAIGNS[:1]))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    result = run_cli(["run", str(policy), "--state", str(blocker / "state")], sim_env(sim))
    ends_in_one_line(result, EXIT_STORAGE, f"archiver: error: the state folder {blocker / 'state'}: ")
    assert sim.ledger() == {}


@pytest.mark.parametrize("option", ["--report", "--metrics"])
def test_a_report_or_metrics_file_that_cannot_be_written_is_one_line(
    tmp_path, start_sim, option
):
    sim = start_sim(campaign_ids=CAMPAIGNS[:1], attempts_per_campaign=60, seed=5)
    policy = write_policy(tmp_path / "policy.yaml", policy_dict(CAMPAIGNS[:1]))
    state = tmp_path / "state"
    env = sim_env(sim)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    target = blocker / "out.prom"

    result = run_cli(["run", str(policy), "--state", str(state), option, str(target)], env)
    last = ends_in_one_line(result, EXIT_STORAGE, f"archiver: error: cannot write {target}: ")
    assert "run again" in last

    # Whatever the run did is in the state store: a rerun archives nothing twice.
    again = run_cli(["run", str(policy), "--state", str(state)], env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert all(n == 1 for n in sim.ledger().values())


@pytest.mark.parametrize(
    "value", ["batch_posted:x", "batch_postd:1", "batch_posted:1:melt", "batch_posted:0"]
)
def test_a_malformed_failpoint_is_a_usage_error_naming_the_variable(tmp_path, start_sim, value):
    sim = start_sim(campaign_ids=CAMPAIGNS[:1], attempts_per_campaign=20)
    policy = write_policy(tmp_path / "policy.yaml", policy_dict(CAMPAIGNS[:1]))
    env = {**sim_env(sim), "ARCHIVER_FAILPOINT": value}
    result = run_cli(["run", str(policy), "--state", str(tmp_path / "state")], env)
    ends_in_one_line(result, 2, f"archiver: error: ARCHIVER_FAILPOINT={value}: ")
    assert [r for r in sim.requests() if not r["path"].startswith("/_sim/")] == []

"""Appends from several processes at once (runs with state stores of their own whose
policies name one audit log) are taken in turn: the chain never forks."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from archiver.audit import AuditLog, verify_file
from archiver.audit import log as audit_log
from archiver.errors import AuditError

WRITERS = 4
APPENDS = 100

# Each writer says it is ready, waits for the word to start, then appends as fast as it
# can: the AuditLog is made after the start too (it reads the log's first line).
WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from archiver.audit import AuditLog

    path, writer, appends = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    print("ready", flush=True)
    if sys.stdin.read(1) != "g":
        sys.exit(3)
    log = AuditLog(path)
    for n in range(appends):
        log.append({"event": "batch_archived", "writer": writer, "n": n},
                   event_id=f"{writer}-{n}")
    """
)


def test_appends_from_several_processes_at_once_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "log.jsonl"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), f"w{writer}", str(APPENDS)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for writer in range(WRITERS)
    ]
    try:
        for proc in procs:  # every writer started and imported before any appends
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("g")
            proc.stdin.flush()
        failures = []
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            if proc.returncode != 0:
                failures.append(err.strip().splitlines()[-1] if err.strip() else proc.returncode)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert failures == []

    result = verify_file(path)
    assert result.ok, result.message
    lines = [json.loads(raw) for raw in path.read_bytes().splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, WRITERS * APPENDS + 1))
    assert sorted(line["event_id"] for line in lines) == sorted(
        f"w{writer}-{n}" for writer in range(WRITERS) for n in range(APPENDS)
    )
    for writer in range(WRITERS):  # each writer's own lines in the order it wrote them
        assert [line["n"] for line in lines if line["writer"] == f"w{writer}"] == list(
            range(APPENDS)
        )


def _held(path: Path, operation: int) -> int:
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, operation)
    return fd


def test_an_append_waits_a_bounded_time_for_the_lock_then_names_the_file(
    six_line_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_log, "LOCK_WAIT_SECONDS", 0.3)
    log = AuditLog(six_line_log)
    before = six_line_log.read_bytes()
    fd = _held(six_line_log, fcntl.LOCK_EX)  # another process appending, as the kernel sees it
    try:
        started = time.monotonic()
        with pytest.raises(AuditError, match="another process holds its lock") as caught:
            log.append({"event": "run_finished"}, event_id="e7")
        assert 0.3 <= time.monotonic() - started < 5
        assert str(six_line_log) in str(caught.value)
        with pytest.raises(AuditError, match="another process holds its lock"):
            log.tail()  # a reader waits for a write in progress too
    finally:
        os.close(fd)
    assert six_line_log.read_bytes() == before
    assert log.append({"event": "run_finished"}, event_id="e7").seq == 7
    assert verify_file(six_line_log).ok


def test_readers_share_the_lock_and_verify_does_not_hold_it(six_line_log: Path) -> None:
    fd = _held(six_line_log, fcntl.LOCK_SH)  # another reader
    try:
        tail = AuditLog(six_line_log).tail()
        assert tail is not None and tail.seq == 6
        assert verify_file(six_line_log).lines == 6
    finally:
        os.close(fd)


def test_verify_checks_the_log_as_it_was_between_appends(six_line_log: Path) -> None:
    """A write in progress when verify starts reading is not read as a torn line."""
    with six_line_log.open("rb") as f:
        end = os.fstat(f.fileno()).st_size
    real_flock = fcntl.flock

    def flock_then_append(fd: int, operation: int) -> None:
        real_flock(fd, operation)
        if operation & fcntl.LOCK_UN:  # the end was read: an append starts at once
            with six_line_log.open("ab") as f:
                f.write(b'{"seq":7,')

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fcntl, "flock", flock_then_append)
        result = verify_file(six_line_log)
    assert (result.ok, result.lines) == (True, 6)
    assert os.path.getsize(six_line_log) > end


@pytest.mark.parametrize("code", [errno.ENOLCK, errno.EOPNOTSUPP])
def test_a_file_system_without_flock_does_not_stop_appends(
    six_line_log: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    code: int,
) -> None:
    def unsupported(fd: int, operation: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, "flock", unsupported)
    log = AuditLog(six_line_log)
    assert log.append({"event": "run_finished"}, event_id="e7").seq == 7
    assert log.append({"event": "run_finished"}, event_id="e8").seq == 8
    assert verify_file(six_line_log).lines == 8
    warned = [r.getMessage() for r in caplog.records if "not serialised" in r.getMessage()]
    assert len(warned) == 1 and str(six_line_log) in warned[0]


def test_a_run_finding_the_audit_log_locked_too_long_exits_75_and_a_rerun_completes(
    tmp_path: Path, start_sim: Any
) -> None:
    """End to end, with the real wait (LOCK_WAIT_SECONDS): the run names the log, exits
    75 (try again later, as for a state folder another run holds), sends nothing, and
    the next run, once the lock is let go, writes the log on as one chain."""
    from tests.support import policy_dict, run_cli, sim_env, write_policy

    campaign = "00000000-0000-4000-8000-000000000001"
    sim = start_sim(campaign_ids=[campaign], attempts_per_campaign=100, seed=3)
    doc = policy_dict([campaign])
    doc["sinks"] = [{"type": "audit_log", "path": "audit/audit.jsonl"}]
    policy = write_policy(tmp_path / "policy.yaml", doc)
    audit, state = tmp_path / "audit" / "audit.jsonl", tmp_path / "state"
    env = sim_env(sim)
    args = ["run", str(policy), "--state", str(state)]
    assert run_cli(args, env).returncode == 0
    lines, calls = len(audit.read_bytes().splitlines()), len(sim.requests())

    fd = _held(audit, fcntl.LOCK_EX)  # another process appending, as the kernel sees it
    try:
        started = time.monotonic()
        held = run_cli(args, env)
        waited = time.monotonic() - started
    finally:
        os.close(fd)
    assert held.returncode == 75, held.stderr[-3000:]
    assert "Traceback" not in held.stderr
    assert held.stderr.strip().splitlines()[-1] == (
        f"archiver: error: the audit log {audit}: another process holds its lock and has not "
        f"let go in {audit_log.LOCK_WAIT_SECONDS:g} seconds (an append takes milliseconds: a "
        "stopped archiver run, or a program holding an flock on the file, may be keeping it); "
        "nothing was read. Run again once it lets go"
    )
    assert waited >= audit_log.LOCK_WAIT_SECONDS
    assert len(sim.requests()) == calls, "a request was sent while the log was held"
    assert len(audit.read_bytes().splitlines()) == lines

    again = run_cli(args, env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(audit.read_bytes().splitlines()) > lines
    verify = run_cli(["audit", "verify", str(audit), "--state", str(state)], env)
    assert verify.returncode == 0, verify.stdout + verify.stderr

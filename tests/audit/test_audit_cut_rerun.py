"""A rerun does not extend an audit log whose end was cut: the lines it would chain on
would move the state store's record of the log's end past the cut, and `audit verify
--state` would then call the log whole."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from archiver.audit.log import AuditLog
from archiver.errors import AuditError
from tests.support import REPO, demo_at_test_pace, run_cli

LOG = "examples/audit/demo-audit.jsonl"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}


def _run(repo: Path, **env: str) -> tuple[int, str]:
    result = run_cli(["run", "examples/demo.yaml", "--state", str(repo / "state"), "--quiet"],
                     _env() | env, cwd=repo)
    return result.returncode, result.stdout + result.stderr


def _verify(repo: Path) -> tuple[int, str]:
    result = run_cli(["audit", "verify", LOG, "--state", str(repo / "state")], _env(), cwd=repo)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "examples", repo / "examples",
                    ignore=shutil.ignore_patterns(".archiver", "audit", "archive"))
    demo_at_test_pace(repo / "examples" / "demo.yaml")
    code, out = _run(repo)
    assert code == 0, out
    return repo


def test_a_rerun_refuses_a_log_cut_short_and_verify_still_says_where(repo: Path) -> None:
    log = repo / LOG
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:-3]))
    code, out = _run(repo)
    assert code == 1, out
    assert (f"the audit log {log} ends at line {len(lines) - 3}, but the state store recorded "
            f"line {len(lines)} written to it: lines were cut off its end") in out
    assert log.read_text() == "".join(lines[:-3])  # nothing chained onto the cut
    code, out = _verify(repo)
    assert code == 1 and "lines were cut off the end" in out, out


def test_a_log_moved_aside_starts_a_new_chain(repo: Path) -> None:
    log = repo / LOG
    log.rename(log.with_name("demo-audit.old.jsonl"))
    code, out = _run(repo)
    assert code == 0, out
    code, out = _verify(repo)
    assert code == 0 and "chain intact" in out, out


def test_a_new_chain_a_killed_run_began_is_extended_not_called_cut(repo: Path) -> None:
    # The log is moved aside; the next run writes its first line into a new file and is
    # killed before the store records it. The store's record is still the old file's
    # last line, and the new file is not cut: the line it ends with is pending.
    log = repo / LOG
    log.rename(log.with_name("demo-audit.old.jsonl"))
    code, out = _run(repo, ARCHIVER_FAILPOINT="event_delivered:1")
    assert code == -9, out
    assert len(log.read_text().splitlines()) == 1
    code, out = _run(repo)
    assert code == 0, out
    code, out = _verify(repo)
    assert code == 0 and "chain intact" in out, out


def _log_of(tmp_path: Path, lines: int) -> AuditLog:
    log = AuditLog(tmp_path / "a.jsonl")
    log.append_many([({"event": "e"}, f"ev{n}") for n in range(lines)])
    return log


def test_lines_past_the_stores_record_are_extended(tmp_path: Path) -> None:
    # A run that died after writing, before the store heard: the log is ahead, not cut.
    ahead = _log_of(tmp_path, 3)
    tail = ahead.tail()
    assert tail is not None
    recorded = AuditLog(ahead.path, checkpoint=lambda _: (2, "not the hash of line 3"))
    assert recorded.append({"event": "e"}, event_id="ev3").seq == 4


def test_a_last_line_other_than_the_one_the_store_recorded_is_refused(tmp_path: Path) -> None:
    log = _log_of(tmp_path, 3)
    other = AuditLog(log.path, checkpoint=lambda _: (3, "0" * 64))
    with pytest.raises(AuditError, match="line 3 is not the line the state store recorded"):
        other.append({"event": "e"}, event_id="ev3")
    tail = log.tail()
    assert tail is not None and tail.seq == 3


def test_with_a_shared_store_the_refusal_names_another_machines_log_as_a_cause(
    tmp_path: Path,
) -> None:
    # Machines sharing a PostgreSQL store but each writing its own file at this path:
    # the store recorded lines another machine wrote, so this file looks cut.
    log = _log_of(tmp_path, 2)
    shared = AuditLog(log.path, checkpoint=lambda _: (5, "0" * 64))
    shared.shared_store = True
    with pytest.raises(AuditError) as refused:
        shared.append({"event": "e"}, event_id="ev2")
    assert "ends at line 2, but the state store recorded line 5" in str(refused.value)
    assert "another machine's log at this path" in str(refused.value)


def test_a_run_appending_while_verify_reads_is_not_taken_for_a_cut(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `audit verify --state` while a scheduled run appends: the run writes its lines and
    # records them in the store right after verify has read the log. Its lines are not
    # in what verify read, and must not read as lines cut off the end.
    from click.testing import CliRunner

    import archiver.commands.audit as audit_command
    from archiver.cli import cli

    read = audit_command.verify_file
    appended: list[int] = []

    def read_then_a_run_appends(path: Path):  # type: ignore[no-untyped-def]
        result = read(path)
        code, out = _run(repo)
        assert code == 0, out
        appended.append(len(path.read_text().splitlines()) - result.lines)
        return result

    monkeypatch.setattr(audit_command, "verify_file", read_then_a_run_appends)
    monkeypatch.chdir(repo)
    result = CliRunner().invoke(cli, ["audit", "verify", LOG, "--state", str(repo / "state")])
    assert appended and appended[0] > 0  # the run did append while verify was reading
    assert result.exit_code == 0, result.output
    assert "chain intact" in result.output and "matches the state store" in result.output


def test_a_state_store_that_cannot_be_read_still_lets_a_broken_chain_be_named(
    repo: Path, tmp_path: Path
) -> None:
    # The store is read first now; its error must not hide the line the chain breaks at.
    log = repo / LOG
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:2] + lines[3:]))
    result = run_cli(["audit", "verify", LOG, "--state", str(tmp_path / "no-store")], _env(),
                     cwd=repo)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{LOG}:3:" in result.stdout, result.stdout

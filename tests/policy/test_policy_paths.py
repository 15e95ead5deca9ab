"""Every path a policy names stays, after symlinks, inside the policy's repository."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver.cli import cli
from archiver.errors import EXIT_CONFIG, PolicyError
from archiver.policy import load_policy, load_policy_text
from archiver.policy.model import Campaign, Connection, Policy
from archiver.policy.paths import OutsideRepository
from archiver.stages.sinks.audit_log import AuditLogSink
from tests.support import policy_dict, run_cli, sim_env, write_policy

from ._texts import VALID, line_of

CAMPAIGN = "dddddddd-0000-4000-8000-000000000014"
AUDIT = "    path: audit/log.jsonl\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git work tree (a `.git` folder is all it takes) with the policy one folder down."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "policies" / "templates").mkdir(parents=True)
    (root / "policies" / "templates" / "audit.json.j2").write_text('{"event": {{ event | tojson }}}')
    return root


def _validate(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["validate", str(path)])
    return result.exit_code, result.output


def _with_audit_path(repo: Path, written: str) -> tuple[Path, str]:
    text = VALID.replace(AUDIT, f"    path: {written}\n")
    policy = repo / "policies" / "p.yaml"
    policy.write_text(text)
    return policy, text


@pytest.mark.parametrize("written", ["../../outside.jsonl", "{outside}/audit.jsonl",
                                     "../.git/config", "{home}/.bash_aliases"])
def test_an_audit_log_outside_the_repository_is_refused_at_its_value(
    repo: Path, tmp_path: Path, written: str
) -> None:
    written = written.format(outside=tmp_path / "elsewhere", home=tmp_path / "home")
    policy, text = _with_audit_path(repo, written)

    code, output = _validate(policy)

    assert code == EXIT_CONFIG, output
    line = line_of(text, written)
    assert output.startswith(f"{policy}:{line}:11: V014 audit log `{written}` resolves "), output
    assert "a policy may only name files" in output.splitlines()[0]


def test_a_symlink_out_of_the_repository_is_judged_by_where_it_leads(
    repo: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (repo / "policies" / "audit").symlink_to(outside, target_is_directory=True)
    policy, text = _with_audit_path(repo, "audit/log.jsonl")

    code, output = _validate(policy)

    assert code == EXIT_CONFIG, output
    assert f"{policy}:{line_of(text, 'audit/log.jsonl')}:11: V014 " in output


def test_paths_anywhere_in_the_work_tree_are_accepted(repo: Path) -> None:
    (repo / "logs").mkdir()
    (repo / "policies" / "here").symlink_to(repo / "logs", target_is_directory=True)
    for written in ("../logs/a.jsonl", f"{repo}/logs/b.jsonl", "here/c.jsonl"):
        policy, _ = _with_audit_path(repo, written)
        code, output = _validate(policy)
        assert code == 0, output


def test_without_git_the_repository_is_the_policy_folder(tmp_path: Path) -> None:
    (tmp_path / "policies" / "templates").mkdir(parents=True)
    (tmp_path / "policies" / "templates" / "audit.json.j2").write_text('{"e": {{ event | tojson }}}')
    policy, _ = _with_audit_path(tmp_path, "../audit.jsonl")

    code, output = _validate(policy)

    assert code == EXIT_CONFIG
    assert " V014 " in output


def test_run_refuses_an_audit_log_outside_before_any_request_and_writes_nothing(
    tmp_path: Path, start_sim
) -> None:
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=20)
    target = tmp_path / "home" / ".bash_aliases"
    doc = policy_dict([CAMPAIGN], sinks=[{"type": "audit_log", "path": str(target)}])
    policy = write_policy(tmp_path / "repo" / "p.yaml", doc)

    result = run_cli(["run", str(policy), "--state", str(tmp_path / "s")], sim_env(sim))

    assert result.returncode == EXIT_CONFIG, result.stderr
    assert f"{policy}:" in result.stderr and " V014 " in result.stderr
    assert "Traceback" not in result.stderr
    assert [r for r in sim.requests() if not r["path"].startswith("/_sim/")] == []
    assert not target.exists() and not target.parent.exists()


def test_policy_resolve_confines_what_the_run_opens(repo: Path, tmp_path: Path) -> None:
    policy_path, _ = _with_audit_path(repo, "audit/log.jsonl")
    policy = load_policy(policy_path)
    assert policy.root == repo.resolve()
    sink = policy.sinks[1].options
    assert isinstance(sink, AuditLogSink)
    assert policy.resolve(sink.path) == repo.resolve() / "policies" / "audit" / "log.jsonl"

    # Checked again when the run opens the file, not only when the policy was read: a
    # symlink that appears after validation is caught too.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (repo / "policies" / "audit").symlink_to(outside, target_is_directory=True)
    with pytest.raises(OutsideRepository, match="resolves outside the policy's repository"):
        policy.resolve(sink.path)
    for written in ("../../x", "/etc/passwd", "../.git/hooks/pre-commit"):
        with pytest.raises(OutsideRepository):
            policy.resolve(written)


def test_a_policy_built_in_code_is_confined_to_the_working_folders_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    policy = Policy(name="p", connection=Connection(base_url="embedded"),
                    campaigns=(Campaign(id="c"),))

    assert policy.resolve("a/b.jsonl") == tmp_path.resolve() / "a" / "b.jsonl"
    with pytest.raises(OutsideRepository):
        policy.resolve("../b.jsonl")


def test_a_policy_from_stdin_is_confined_to_the_working_folders_repository(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo / "policies")
    text = VALID.replace(AUDIT, "    path: ../../outside.jsonl\n")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))

    with pytest.raises(PolicyError) as caught:
        load_policy("-")

    (found,) = caught.value.diagnostics
    assert (found.file, found.line, found.code) == ("<stdin>", line_of(text, "outside"), "V014")


def test_a_policy_given_as_text_takes_its_base_folders_repository(repo: Path) -> None:
    policy = load_policy_text(VALID, name="inline.yaml", base_dir=repo / "policies")

    assert policy.root == repo.resolve()
    with pytest.raises(PolicyError) as caught:
        load_policy_text(VALID.replace(AUDIT, "    path: ../../x.jsonl\n"), name="inline.yaml",
                         base_dir=repo / "policies")
    assert [d.code for d in caught.value.diagnostics] == ["V014"]


@pytest.mark.parametrize("written", ["audit/", "audit/logs/", "templates/audit.json.j2/",
                                     "audit/.", "audit/logs/./"])
def test_an_audit_log_written_as_a_folder_is_refused(repo: Path, written: str) -> None:
    # "audit/" would be written as a file named audit, in the way of a later policy's
    # audit/ folder. Nothing is there (or a file is): it is told as written, never as a
    # folder found.
    policy, text = _with_audit_path(repo, written)
    code, output = _validate(policy)
    assert code == EXIT_CONFIG, output
    assert output.splitlines()[0] == (
        f"{policy}:{line_of(text, written)}:11: V012 audit log `{written}` is written as a "
        "folder (it ends in `/` or `/.`): name the log's file"), output


@pytest.mark.parametrize("leads", ["outside", "inside"])
def test_an_audit_logs_digest_folder_that_is_a_symlink_is_refused_at_the_logs_path(
    repo: Path, tmp_path: Path, leads: str
) -> None:
    # A run with ARCHIVER_SIGNING_KEY writes its signed digests into `LOG.digests/`
    # beside the log: a link there would have them written wherever it leads.
    target = tmp_path / "elsewhere" if leads == "outside" else repo / "other"
    target.mkdir()
    (repo / "policies" / "audit").mkdir()
    (repo / "policies" / "audit" / "log.jsonl.digests").symlink_to(target, True)
    policy, text = _with_audit_path(repo, "audit/log.jsonl")

    code, output = _validate(policy)

    assert code == EXIT_CONFIG, output
    assert output.startswith(f"{policy}:{line_of(text, 'audit/log.jsonl')}:11: V014 "), output
    assert "audit/log.jsonl.digests" in output and "symlink" in output, output

"""Provenance names the policy's commit and says whether the file differs from it,
as git itself sees it."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from archiver import __version__
from archiver.governance.provenance import policy_provenance


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def _repo(tmp_path: Path) -> tuple[Path, Path]:
    repo = tmp_path / "repo"
    (repo / "policies").mkdir(parents=True)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "a@example.com")
    _git(repo, "config", "user.name", "A")
    policy = repo / "policies" / "p.yaml"
    policy.write_text("version: 1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "policy")
    return repo, policy


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_committed_unchanged_policy_names_its_commit_and_is_clean(tmp_path):
    repo, policy = _repo(tmp_path)
    found = policy_provenance(policy, _sha(policy))
    assert found == {
        "sha256": _sha(policy),
        "git_commit": _git(repo, "rev-parse", "HEAD"),
        "git_dirty": False,
        "archiver_version": __version__,
    }


def test_an_edited_policy_is_dirty(tmp_path):
    repo, policy = _repo(tmp_path)
    policy.write_text("version: 1\nname: edited\n")
    found = policy_provenance(policy, _sha(policy))
    assert found["git_commit"] == _git(repo, "rev-parse", "HEAD")
    assert found["git_dirty"] is True


def test_an_untracked_policy_is_dirty(tmp_path):
    repo, _ = _repo(tmp_path)
    new = repo / "policies" / "new.yaml"
    new.write_text("version: 1\n")
    assert policy_provenance(new, _sha(new))["git_dirty"] is True


def test_outside_git_the_commit_and_state_are_unknown(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\n")
    found = policy_provenance(policy, _sha(policy))
    assert found["git_commit"] is None and found["git_dirty"] is None
    assert policy_provenance(None, "0" * 64)["git_commit"] is None


def test_a_run_names_its_policys_commit_in_the_audit_log_report_and_runs(tmp_path):
    import json
    import os
    import shutil

    from tests.support import REPO, demo_at_test_pace, run_cli

    repo = tmp_path / "repo"
    shutil.copytree(REPO / "examples", repo / "examples",
                    ignore=shutil.ignore_patterns(".archiver", "audit"))
    demo_at_test_pace(repo / "examples" / "demo.yaml")
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "a@example.com")
    _git(repo, "config", "user.name", "A")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "policies")
    head = _git(repo, "rev-parse", "HEAD")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}

    def run(name: str) -> dict:
        report = tmp_path / f"{name}.json"
        result = run_cli(["run", "examples/demo.yaml", "--state", str(tmp_path / "state"),
                          "--report", str(report), "--quiet"], env, cwd=repo)
        assert result.returncode == 0, result.stderr
        return json.loads(report.read_text())["policy"]

    first = run("first")
    assert (first["git_commit"], first["git_dirty"]) == (head, False)
    lines = [json.loads(x) for x in (repo / "examples/audit/demo-audit.jsonl").read_text().splitlines()]
    assert {(x["policy_git_commit"], x["policy_git_dirty"]) for x in lines} == {(head, False)}
    assert all(x["archiver_version"] == __version__ for x in lines)

    policy = repo / "examples" / "demo.yaml"
    policy.write_text(policy.read_text() + "# edited, not committed\n")
    second = run("second")
    assert (second["git_commit"], second["git_dirty"]) == (head, True)

    listed = run_cli(["runs", "--state", str(tmp_path / "state"), "--format", "json"], env, cwd=repo)
    rows = json.loads(listed.stdout)
    assert [(r["git_commit"], r["git_dirty"]) for r in rows] == [(head, True), (head, False)]
    assert rows[0]["policy_sha256"] == _sha(policy)

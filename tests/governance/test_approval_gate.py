"""`run` against a real tenant runs only an approved policy text; the simulator and
loopback test servers need no approval."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import (
    CLIENT_ID,
    CLIENT_SECRET,
    REPO,
    WEBHOOK_SECRET,
    demo_at_test_pace,
    run_cli,
)

POLICY = "policies/survey-retention.yaml"
# A name that cannot resolve: a run that passes the gate fails to reach it, and
# nothing anywhere is contacted.
REAL_TENANT = "https://tenant.example.invalid"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "policies", tmp_path / "policies",
                    ignore=shutil.ignore_patterns(".archiver", "audit", "*.approved"))
    return tmp_path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    env.update(CXONE_CLIENT_ID=CLIENT_ID, CXONE_CLIENT_SECRET=CLIENT_SECRET,
               DW_WEBHOOK_SECRET=WEBHOOK_SECRET, SALES_WEBHOOK_SECRET=WEBHOOK_SECRET)
    env.update(extra)
    return env


def _run(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(["run", POLICY, "--state", str(repo / "state"), *args], _env(**env), cwd=repo)


def test_an_unapproved_policy_is_refused_for_a_real_tenant_before_any_request(repo):
    result = _run(repo, "--base-url", REAL_TENANT)
    assert result.returncode == 77, result.stderr
    sha = __import__("hashlib").sha256((repo / POLICY).read_bytes()).hexdigest()
    assert f"{POLICY} (sha256 {sha}) is not approved" in result.stderr
    assert "archiver approve" in result.stderr
    assert not (repo / "state").exists()  # refused before the state folder, too


def test_an_approved_policy_passes_the_gate(repo):
    approved = run_cli(["approve", POLICY, "--by", "alice@example.com"], _env(), cwd=repo)
    assert approved.returncode == 0, approved.stderr
    result = _run(repo, "--base-url", REAL_TENANT)
    # Past the gate, the run tries the host, which does not exist.
    assert result.returncode == 1, result.stderr
    assert "cannot reach tenant.example.invalid" in result.stderr


def test_an_edit_after_approval_is_refused(repo):
    assert run_cli(["approve", POLICY, "--by", "alice@example.com"], _env(),
                   cwd=repo).returncode == 0
    policy = repo / POLICY
    policy.write_text(policy.read_text() + "# edited after approval\n")
    result = _run(repo, "--base-url", REAL_TENANT)
    assert result.returncode == 77
    assert "the policy changed since it was approved" in result.stderr


@pytest.mark.parametrize(("text", "why"), [
    ("sha256: [unclosed\n", "is not YAML"),
    ("- a list\n", "is not a mapping"),
    ("sha256: abc\napproved_at: now\n", "`approved_by` is missing or not text"),
    # YAML the loader cannot convert: once a ValueError or RecursionError traceback.
    ("sha256: 2026-02-30\n", "is not YAML an approval can hold"),
    ("sha256: 1" + "0" * 5000 + "\n", "is not YAML an approval can hold"),
    ("[" * 20_000 + "\n", "is not YAML an approval can hold"),
])
def test_a_broken_approval_file_is_no_approval(repo, text, why):
    # Exit 77, as for no approval at all (it was 78, the code of a broken policy).
    (repo / (POLICY + ".approved")).write_text(text)
    result = _run(repo, "--base-url", REAL_TENANT)
    assert result.returncode == 77, result.stderr
    assert "is not approved: approval " in result.stderr and why in result.stderr
    assert "Traceback" not in result.stderr
    assert not (repo / "state").exists()  # refused before the state folder


def test_a_required_signature_is_checked_by_run(repo, tmp_path):
    assert run_cli(["approve", POLICY, "--by", "alice@example.com"], _env(),
                   cwd=repo).returncode == 0
    signers = tmp_path / "allowed_signers"
    signers.write_text("alice@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n")
    result = _run(repo, "--base-url", REAL_TENANT, ARCHIVER_ALLOWED_SIGNERS=str(signers))
    assert result.returncode == 77
    assert "unsigned" in result.stderr


def test_the_simulator_needs_no_approval(repo):
    shutil.copytree(REPO / "examples", repo / "examples",
                    ignore=shutil.ignore_patterns(".archiver", "audit", "*.approved"))
    demo_at_test_pace(repo / "examples" / "demo.yaml")
    result = run_cli(["run", "examples/demo.yaml", "--state", str(repo / "state"), "--quiet"],
                     _env(), cwd=repo)
    assert result.returncode == 0, result.stderr
    assert "not approved" not in result.stderr


def test_a_loopback_test_server_needs_no_approval(repo):
    # Past the gate, nothing listens on this port: the run says it cannot reach it.
    result = _run(repo, "--base-url", "http://127.0.0.1:9")
    assert "not approved" not in result.stderr
    assert "cannot reach 127.0.0.1:9" in result.stderr


def test_plan_shows_the_approval_state(repo):
    shutil.copytree(REPO / "examples", repo / "examples",
                    ignore=shutil.ignore_patterns(".archiver", "audit", "*.approved"))
    demo_at_test_pace(repo / "examples" / "demo.yaml")
    plain = run_cli(["plan", "examples/demo.yaml"], _env(), cwd=repo)
    assert plain.returncode == 0, plain.stderr
    assert "approval: not approved" in plain.stdout and "not needed for this target" in plain.stdout
    assert run_cli(["approve", "examples/demo.yaml", "--by", "alice@example.com"], _env(),
                   cwd=repo).returncode == 0
    as_json = run_cli(["plan", "examples/demo.yaml", "--format", "json"], _env(), cwd=repo)
    assert as_json.returncode == 0, as_json.stderr
    found = __import__("json").loads(as_json.stdout)["approval"]
    assert found["approved"] is True and found["needed"] is False
    assert found["summary"].startswith("approved by alice@example.com")


def test_a_policy_read_from_stdin_is_refused_for_a_real_tenant_naming_why(repo):
    """Before, it looked for `./-.approved` and advised `archiver approve -`."""
    text = (repo / POLICY).read_text()
    result = subprocess.run(
        [sys.executable, "-m", "archiver", "run", "-", "--state", str(repo / "state"),
         "--base-url", REAL_TENANT],
        input=text, env=_env(), cwd=repo / "policies", capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 77, result.stderr
    assert "a policy read from standard input" in result.stderr
    assert "-.approved" not in result.stderr and "approve -" not in result.stderr

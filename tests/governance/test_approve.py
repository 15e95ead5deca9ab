"""`archiver approve`: an approval binds the policy's exact bytes, names who and when,
and, when signed with an SSH key, verifies against an allowed-signers file only for
the approver it names."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from archiver.errors import ConfigError
from archiver.governance import approval
from tests.support import REPO, run_cli

POLICY = "policies/survey-retention.yaml"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "policies", tmp_path / "policies",
                    ignore=shutil.ignore_patterns(".archiver", "audit", "*.approved"))
    return tmp_path


@pytest.fixture
def ssh_key(tmp_path: Path) -> Path:
    key = tmp_path / "keys" / "id_ed25519"
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "approver",
                    "-f", str(key)], check=True)
    return key


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}


def _approve(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(["approve", *args], _env(), cwd=repo)


def test_approve_writes_the_hash_the_approver_and_the_time_beside_the_policy(repo):
    result = _approve(repo, POLICY, "--by", "alice@example.com")
    assert result.returncode == 0, result.stderr
    written = yaml.safe_load((repo / (POLICY + ".approved")).read_text())
    expected = approval.policy_sha256((repo / POLICY).read_bytes())
    assert written["sha256"] == expected
    assert written["approved_by"] == "alice@example.com"
    assert written["approved_at"].endswith("Z")
    check = _approve(repo, "--check", POLICY)
    assert check.returncode == 0, check.stderr
    assert "approved by alice@example.com" in check.stdout



def test_an_approver_name_cannot_drive_the_terminal_or_split_the_line(repo):
    """An approval file is reviewed text: what it names is shown escaped, as plan shows it."""
    hostile = "mallory\n\x1b]0;title\x07\x1b[2J@example.com"
    written = _approve(repo, POLICY, "--by", hostile)
    assert written.returncode == 0, written.stderr
    assert yaml.safe_load((repo / (POLICY + ".approved")).read_text())["approved_by"] == hostile
    check = _approve(repo, "--check", POLICY)
    assert check.returncode == 0, check.stderr
    for shown in (written.stdout, check.stdout):
        assert "\x1b" not in shown and "\x07" not in shown, shown
        assert len(shown.strip().splitlines()) == 1, shown
        assert "mallory\\n\\x1b]0;title\\x07" in shown, shown

def test_an_edit_after_approval_needs_a_new_one(repo):
    assert _approve(repo, POLICY, "--by", "alice@example.com").returncode == 0
    policy = repo / POLICY
    policy.write_text(policy.read_text() + "\n# a comment is an edit too\n")
    check = _approve(repo, "--check", POLICY)
    assert check.returncode == 77
    assert "the policy changed since it was approved" in check.stderr
    assert approval.policy_sha256(policy.read_bytes()) in check.stderr


def test_no_approval_file_is_not_approved(repo):
    check = _approve(repo, "--check", POLICY)
    assert check.returncode == 77
    assert "survey-retention.yaml.approved does not exist" in check.stderr


def test_approve_defaults_to_gits_user_email(repo):
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "config", "user.email", "carol@example.com"], cwd=repo, check=True)
    assert _approve(repo, POLICY).returncode == 0
    assert "carol@example.com" in (repo / (POLICY + ".approved")).read_text()


def test_an_invalid_policy_cannot_be_approved(repo):
    policy = repo / POLICY
    policy.write_text(policy.read_text().replace("max_items: 200", "max_item: 200"))
    result = _approve(repo, POLICY, "--by", "alice@example.com")
    assert result.returncode == 78
    assert not (repo / (POLICY + ".approved")).exists()


def test_a_signed_approval_verifies_only_for_the_approver_the_signers_file_names(repo, ssh_key):
    signed = _approve(repo, POLICY, "--by", "alice@example.com", "--sign-with", str(ssh_key))
    assert signed.returncode == 0, signed.stderr
    assert "BEGIN SSH SIGNATURE" in (repo / (POLICY + ".approved")).read_text()
    public = (ssh_key.parent / "id_ed25519.pub").read_text().strip()
    alice = repo / "allowed_signers"
    alice.write_text(f"alice@example.com {public}\n")
    ok = _approve(repo, "--check", "--allowed-signers", str(alice), POLICY)
    assert ok.returncode == 0, ok.stderr
    assert "signature verified" in ok.stdout

    bob = repo / "allowed_signers_bob"
    bob.write_text(f"bob@example.com {public}\n")
    wrong = _approve(repo, "--check", "--allowed-signers", str(bob), POLICY)
    assert wrong.returncode == 77
    assert "signature does not verify" in wrong.stderr


def test_editing_a_signed_approval_breaks_its_signature(repo, ssh_key):
    assert _approve(repo, POLICY, "--by", "alice@example.com",
                    "--sign-with", str(ssh_key)).returncode == 0
    public = (ssh_key.parent / "id_ed25519.pub").read_text().strip()
    signers = repo / "allowed_signers"
    signers.write_text(f"alice@example.com {public}\nmallory@example.com {public}\n")
    file = repo / (POLICY + ".approved")
    file.write_text(file.read_text().replace("alice@example.com", "mallory@example.com"))
    forged = _approve(repo, "--check", "--allowed-signers", str(signers), POLICY)
    assert forged.returncode == 77
    assert "signature does not verify" in forged.stderr


def test_an_unsigned_approval_is_refused_when_signatures_are_required(repo):
    assert _approve(repo, POLICY, "--by", "alice@example.com").returncode == 0
    signers = repo / "allowed_signers"
    signers.write_text("alice@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n")
    result = _approve(repo, "--check", "--allowed-signers", str(signers), POLICY)
    assert result.returncode == 77
    assert "unsigned" in result.stderr


def test_an_approval_with_no_end_is_refused_unread(tmp_path):
    # A FIFO (or a link to /dev/zero) has no size and no end: refused as what it is,
    # before a byte is read. A FIFO with no writer would block the open itself.
    fifo = tmp_path / "p.yaml.approved"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="it is a named pipe \\(FIFO\\), not a regular file"):
        approval.read(fifo)
    (tmp_path / "link.approved").symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match="it is a character device, not a regular file"):
        approval.read(tmp_path / "link.approved")


def test_approving_never_writes_through_a_link_left_where_its_temporary_file_goes(repo):
    # A policy change can carry symlinks; one named like the file `approve` writes first
    # must not turn the approver's command into a write elsewhere (here: outside the
    # repository, to a file of the approver's).
    victim = repo.parent / "victim.txt"
    victim.write_text("precious\n")
    (repo / (POLICY + ".approved.tmp")).symlink_to(victim)
    result = _approve(repo, POLICY, "--by", "alice@example.com")
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "precious\n"
    approved = repo / (POLICY + ".approved")
    assert not approved.is_symlink()
    assert yaml.safe_load(approved.read_text())["approved_by"] == "alice@example.com"
    assert sorted(p.name for p in approved.parent.glob("*.approved*")) == [
        "survey-retention.yaml.approved", "survey-retention.yaml.approved.tmp"]

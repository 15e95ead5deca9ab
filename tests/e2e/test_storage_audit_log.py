"""`archiver run` writes only an audit log of its own: a file it did not write (an
authorized_keys), a link, and a torn log no state store vouches for are refused untouched."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import policy_dict, run_cli, sim_env, write_policy

CAMPAIGN = "ffffffff-0000-4000-8000-000000000006"
KEYS = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample one@host\nssh-ed25519 AAAAC3Nz two@host"


def audited_policy(tmp_path: Path, audit_path: str) -> Path:
    doc = policy_dict([CAMPAIGN])
    doc["sinks"] = [{"type": "audit_log", "path": audit_path}]
    return write_policy(tmp_path / "repo" / "policy.yaml", doc)


def refused(result, needle: str) -> None:
    assert result.returncode == 78, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("archiver: error: refusing the audit log ") and needle in last, last


def test_an_audit_log_path_at_a_file_archiver_did_not_write_is_refused_untouched(
    tmp_path, start_sim
):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=30)
    policy = audited_policy(tmp_path, "authorized_keys")
    keys = policy.parent / "authorized_keys"
    keys.write_text(KEYS)  # no newline at its end: what the old code took for a torn line

    result = run_cli(["run", str(policy), "--state", str(tmp_path / "state")], sim_env(sim))
    refused(result, f"{keys}: it is not empty and does not begin an archiver audit chain")
    assert keys.read_text() == KEYS
    assert sim.ledger() == {}


def test_an_audit_log_linked_to_another_file_of_the_repository_is_refused_untouched(
    tmp_path, start_sim
):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=30)
    policy = audited_policy(tmp_path, "audit.jsonl")
    # The policy follows links (one out of the repository is refused there, V014); the
    # file the link leads to is judged when it is opened, and it is not an audit log.
    target = policy.parent / "notes.txt"
    target.write_text("alias ll='ls -l'\n")
    (policy.parent / "audit.jsonl").symlink_to(target)

    result = run_cli(["run", str(policy), "--state", str(tmp_path / "state")], sim_env(sim))
    refused(result, f"{target}: it is not empty and does not begin an archiver audit chain")
    assert target.read_text() == "alias ll='ls -l'\n"
    assert sim.ledger() == {}


def test_a_torn_tail_is_dropped_only_when_the_state_store_vouches_for_the_log(
    tmp_path, start_sim
):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=60)
    policy = audited_policy(tmp_path, "audit/audit.jsonl")
    log = policy.parent / "audit" / "audit.jsonl"
    state, stranger = tmp_path / "state", tmp_path / "other-state"
    env = sim_env(sim)
    assert run_cli(["run", str(policy), "--state", str(state)], env).returncode == 0
    written = log.read_bytes()
    cut = b'{"seq":99,"event_id":"cut-short'
    torn = written + cut
    log.write_bytes(torn)

    # A state store that never wrote this file cannot vouch for it: nothing is touched.
    result = run_cli(["run", str(policy), "--state", str(stranger)], env)
    refused(result, "its last line is incomplete and no state store recorded writing to this file")
    assert log.read_bytes() == torn

    # The store that wrote it can: the torn bytes go, and the chain goes on.
    again = run_cli(["run", str(policy), "--state", str(state)], env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"dropping {len(cut)} bytes of an interrupted write" in again.stderr
    assert log.read_bytes().startswith(written)
    verify = run_cli(["audit", "verify", str(log), "--state", str(state)], env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    seqs = [json.loads(line)["seq"] for line in log.read_text().splitlines()]
    assert seqs == list(range(1, len(seqs) + 1))

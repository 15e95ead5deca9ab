"""`archiver run` keeps its state folder to itself: created 0700 with 0600 files, and a
folder or file there that is a link or another user's is refused, its target untouched."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, policy_dict, run_cli, sim_env, write_policy

CAMPAIGN = "eeeeeeee-0000-4000-8000-000000000005"
BASHRC = "export PATH=$HOME/bin:$PATH\nalias ll='ls -l'\n"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")


def repo_with_policy(tmp_path: Path) -> Path:
    """A policy in a repository folder; its state folder defaults to .archiver/ beside it."""
    return write_policy(tmp_path / "repo" / "policy.yaml", policy_dict([CAMPAIGN]))


def modes(folder: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.lstat().st_mode) for p in folder.iterdir()}


def refused_cleanly(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 78, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("archiver: error: refusing ") and needle in last, result.stderr


@pytest.mark.parametrize("name", ["run.lock", "state.db", "state.db-wal", "state.db-journal"])
def test_a_committed_link_in_the_state_folder_is_refused_and_its_target_untouched(
    tmp_path, start_sim, name
):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=30)
    policy = repo_with_policy(tmp_path)
    bashrc = tmp_path / "home" / ".bashrc"
    bashrc.parent.mkdir()
    bashrc.write_text(BASHRC)
    committed = policy.parent / ".archiver"
    committed.mkdir()
    (committed / name).symlink_to(bashrc)

    result = run_cli(["run", str(policy)], sim_env(sim))
    refused_cleanly(result, f"{committed / name}: it is a symbolic link")
    assert bashrc.read_text() == BASHRC
    assert sim.ledger() == {}


def test_a_committed_state_folder_link_is_refused(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=30)
    policy = repo_with_policy(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    (policy.parent / ".archiver").symlink_to(home)

    result = run_cli(["run", str(policy)], sim_env(sim))
    refused_cleanly(result, "it is a symbolic link")
    assert list(home.iterdir()) == []
    assert sim.ledger() == {}


@as_root
@pytest.mark.parametrize("name", [".", "state.db"])
def test_a_state_folder_or_file_of_another_user_is_refused(tmp_path, start_sim, name):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=30)
    policy = repo_with_policy(tmp_path)
    state = tmp_path / "state"
    assert run_cli(["run", str(policy), "--state", str(state)], sim_env(sim)).returncode == 0
    os.chown(state / name, 65534, 65534)
    result = run_cli(["run", str(policy), "--state", str(state)], sim_env(sim))
    refused_cleanly(result, "belongs to another user (uid 65534)")


def test_a_run_keeps_its_state_owner_only_whatever_the_umask(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=30)
    policy = repo_with_policy(tmp_path)
    state = tmp_path / "state"
    # Killed at the end, so SQLite's -wal and -shm files are still there to look at.
    killed = subprocess.run(
        [sys.executable, "-m", "archiver", "run", str(policy), "--state", str(state)],
        env={**sim_env(sim), "ARCHIVER_FAILPOINT": "run_finishing:1"},
        capture_output=True, text=True, timeout=120, cwd=REPO,
        preexec_fn=lambda: os.umask(0),
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    found = modes(state)
    assert {"run.lock", "state.db", "state.db-wal", "state.db-shm"} <= set(found)
    assert set(found.values()) == {0o600}, found


def test_loose_modes_of_an_earlier_version_are_tightened_by_the_next_run(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=30)
    policy = repo_with_policy(tmp_path)
    state = policy.parent / ".archiver"
    assert run_cli(["run", str(policy)], sim_env(sim)).returncode == 0
    state.chmod(0o755)
    for item in state.iterdir():
        item.chmod(0o644)
    again = run_cli(["run", str(policy)], sim_env(sim))
    assert again.returncode == 0, again.stderr[-2000:]
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert set(modes(state).values()) == {0o600}

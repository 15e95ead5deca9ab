"""Commands that only read a state store (``runs``, ``runs show``, ``runs outbox``,
``audit verify --state``) read one on a read-only mount, a backup say: before, each
opened it as a run does (WAL mode set, migrations, modes tightened) and exited 74 with
a run's advice ("make it writable ... the next run picks up where this one stopped")."""

from __future__ import annotations

import json

from tests.support import policy_dict, run_cli, sim_env, write_policy


def test_read_only_commands_read_a_store_on_a_read_only_mount(read_only_view, start_sim):
    source, view = read_only_view
    sim = start_sim(attempts_per_campaign=60)
    doc = policy_dict(list(sim.campaign_ids)[:1],
                      sinks=[{"type": "audit_log", "path": "audit.jsonl"}])
    (source / ".git").mkdir()
    policy = write_policy(source / "policy.yaml", doc)
    env = sim_env(sim)
    ran = run_cli(["run", str(policy), "--state", str(source / "state")], env)
    assert ran.returncode == 0, ran.stderr[-2000:]
    before = sorted((p.name, p.stat().st_size) for p in (source / "state").iterdir())

    state = str(view / "state")
    listed = run_cli(["runs", "--state", state, "--format", "json"], env)
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["status"] == "completed"

    shown = run_cli(["runs", "show", row["id"][:12], "--state", state], env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["totals"]["archived"] > 0

    outbox = run_cli(["runs", "outbox", "--state", state], env)
    assert outbox.returncode == 0, outbox.stderr
    assert "audit_log:" in outbox.stdout

    # The store knows the log by the path the run wrote it to.
    verified = run_cli(["audit", "verify", str(source / "audit.jsonl"), "--state", state], env)
    assert verified.returncode == 0, verified.stderr
    assert "matches the state store" in verified.stdout

    after = sorted((p.name, p.stat().st_size) for p in (source / "state").iterdir())
    assert after == before, "reading the store changed its folder"


def test_reading_a_state_folder_still_refuses_one_that_is_a_link(tmp_path, start_sim):
    """Opening a store only to read it checks the folder as a run does, changing nothing."""
    sim = start_sim(attempts_per_campaign=20)
    policy = write_policy(tmp_path / "policy.yaml", policy_dict(list(sim.campaign_ids)[:1]))
    env = sim_env(sim)
    assert run_cli(["run", str(policy), "--state", str(tmp_path / "state")], env).returncode == 0
    (tmp_path / "link").symlink_to(tmp_path / "state")
    listed = run_cli(["runs", "--state", str(tmp_path / "link")], env)
    assert listed.returncode == 78, listed.stdout + listed.stderr
    assert "symbolic link" in listed.stderr

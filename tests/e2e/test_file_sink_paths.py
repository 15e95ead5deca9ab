"""A ``file`` sink's folder template is checked for what a run will write, before any
request: a placeholder with a format spec or an attribute (``{campaign:.<2}``,
``{campaign.__class__}``) once passed ``validate`` and was only refused by the run
after the batch was archived on the server, which left it archived and recorded
failed, with no file written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver.cli import cli
from tests.support import policy_dict, run_cli, sim_env, write_policy


def file_policy(folder: Path, campaign_ids: list[str], path: str, base_url: str) -> Path:
    (folder / ".git").mkdir(parents=True, exist_ok=True)  # the policy's repository
    doc = policy_dict(campaign_ids, sinks=[{"type": "file", "path": path}])
    doc["connection"]["base_url"] = base_url
    return write_policy(folder / "policy.yaml", doc)


ESCAPES = [
    "archive/{campaign:.<2.0}/{campaign:.<2.0}/{campaign:.<2.0}/ESCAPED/{campaign}/",
    "archive/{campaign.__class__}/{date}/",
    "archive/{campaign!r}/",
    "archive/{tenant}/{campaign}/",
    "archive/{{campaign}}/",
    "archive/{campaign/",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_a_folder_template_with_more_than_plain_placeholders_is_refused(tmp_path, path):
    policy = file_policy(tmp_path / "repo", ["c-1"], path, "http://127.0.0.1:9")
    checked = CliRunner().invoke(cli, ["validate", str(policy)])
    assert checked.exit_code == 78, checked.output
    assert f"policy.yaml:{path_line(policy)}:" in checked.output
    assert "V026" in checked.output
    assert "a folder template has no braces but the placeholders" in checked.output


def test_a_run_refuses_such_a_template_before_any_request(tmp_path, start_sim):
    sim = start_sim(attempts_per_campaign=50)
    policy = file_policy(tmp_path / "repo", list(sim.campaign_ids), ESCAPES[0], sim.base_url)
    ran = run_cli(["run", str(policy), "--state", str(tmp_path / "state")], sim_env(sim))
    assert ran.returncode == 78, ran.stdout + ran.stderr
    assert "V026" in ran.stderr
    assert sim.stats()["total_requests"] == 0, "a request was sent for a refused policy"
    assert not (tmp_path / "ESCAPED").exists()


def path_line(policy: Path) -> int:
    """The line of the file sink's ``path`` in the written policy."""
    lines = policy.read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if line.strip().startswith("path:"))


def test_a_campaign_folder_that_a_symlink_leads_outside_is_refused_before_any_request(
    tmp_path, start_sim
):
    sim = start_sim(attempts_per_campaign=50)
    ids = list(sim.campaign_ids)
    repo = tmp_path / "repo"
    policy = file_policy(repo, ids, "archive/{campaign}/{date}/", sim.base_url)
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / "archive").mkdir()
    (repo / "archive" / ids[1]).symlink_to(outside)  # one campaign's folder only

    checked = run_cli(["validate", str(policy)], sim_env(sim))
    assert checked.returncode == 78, checked.stdout + checked.stderr
    assert "V014" in checked.stdout + checked.stderr

    ran = run_cli(["run", str(policy), "--state", str(tmp_path / "state")], sim_env(sim))
    assert ran.returncode == 78, ran.stdout + ran.stderr
    assert sim.stats()["total_requests"] == 0
    assert list(outside.iterdir()) == []


def test_plain_placeholders_write_each_campaign_under_its_folder(tmp_path, start_sim):
    sim = start_sim(attempts_per_campaign=50)
    ids = list(sim.campaign_ids)
    repo = tmp_path / "repo"
    policy = file_policy(repo, ids, "archive/{campaign}/{date}/", sim.base_url)
    ran = run_cli(["run", str(policy), "--state", str(tmp_path / "state")], sim_env(sim))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    for campaign_id in ids:
        written = list((repo / "archive" / campaign_id).glob("*/*.jsonl.gz"))
        assert written, f"no archive file for {campaign_id}"

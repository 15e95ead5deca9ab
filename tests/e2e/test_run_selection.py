"""`run --campaign ID` runs only the campaigns asked for; `run FOLDER` runs every policy
under it, one after another, and ends with a combined line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO, demo_at_test_pace, read_report, run_cli

CAMPAIGN = "3f6c2a10-8d4e-4b7a-9c21-5e0f1a2b3c4d"  # the first campaign of examples/demo.yaml


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    folder = tmp_path / "repo" / "policies"
    shutil.copytree(REPO / "examples" / "templates", folder / "templates")
    (folder / "demo.yaml").write_text((REPO / "examples" / "demo.yaml").read_text())
    demo = demo_at_test_pace(folder / "demo.yaml").read_text()
    (folder / "nested").mkdir()
    # A second policy under a sub-folder, with its own name and audit log.
    (folder / "nested" / "second.yaml").write_text(
        demo.replace("name: demo", "name: second", 1)
        .replace("path: audit/demo-audit.jsonl", "path: ../audit/second-audit.jsonl")
        .replace("template: templates/", "template: ../templates/")
    )
    # A git work tree: its policies may name files anywhere inside it.
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    return tmp_path / "repo"


def test_only_the_campaigns_asked_for_run(repo, tmp_path):
    report = tmp_path / "report.json"
    result = run_cli(["run", "policies/demo.yaml", "--campaign", CAMPAIGN, "--state",
                      str(tmp_path / "state"), "--report", str(report), "--quiet"], _env(), cwd=repo)
    assert result.returncode == 0, result.stderr
    assert [c["id"] for c in read_report(report)["campaigns"]] == [CAMPAIGN]


def test_a_campaign_no_policy_lists_is_a_usage_error(repo, tmp_path):
    result = run_cli(["run", "policies/demo.yaml", "--campaign", "no-such-campaign", "--state",
                      str(tmp_path / "state")], _env(), cwd=repo)
    assert result.returncode == 2
    assert "--campaign no-such-campaign: no policy given lists it" in result.stderr
    assert not (tmp_path / "state").exists()  # refused before anything


def test_a_folder_runs_every_policy_under_it_with_a_combined_line(repo, tmp_path):
    report = tmp_path / "report.json"
    result = run_cli(["run", "policies", "--campaign", CAMPAIGN, "--state", str(tmp_path / "state"),
                      "--report", str(report), "--quiet"], _env(), cwd=repo)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in tmp_path.glob("report.*.json"))
    assert names == ["report.demo.json", "report.second.json"]
    first = json.loads((tmp_path / "report.demo.json").read_text())["totals"]
    second = json.loads((tmp_path / "report.second.json").read_text())["totals"]
    combined = ", ".join(f"{k} {first[k] + second[k]}" for k in ("listed", "archived", "skipped"))
    assert f"all 2 of 2 policies: {combined}" in result.stdout



def test_two_policies_of_one_name_in_one_run_are_a_usage_error(repo, tmp_path):
    """A run's report file, metrics series and running totals are the policy's name's:
    two policies of one name would write one report over the other's."""
    second = repo / "policies" / "nested" / "second.yaml"
    second.write_text(second.read_text().replace("name: second", "name: demo", 1))
    report = tmp_path / "report.json"
    result = run_cli(["run", "policies", "--state", str(tmp_path / "state"), "--report",
                      str(report), "--quiet"], _env(), cwd=repo)
    assert result.returncode == 2, result.stderr
    assert ("policies/demo.yaml and policies/nested/second.yaml are both named `demo`"
            in result.stderr), result.stderr
    assert not (tmp_path / "state").exists()  # refused before anything
    assert list(tmp_path.glob("report*")) == []

def test_a_folder_without_policies_is_a_usage_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli(["run", str(tmp_path / "empty")], _env(), cwd=tmp_path)
    assert result.returncode == 2
    assert "no policy files" in result.stderr


def test_the_combined_line_names_failed_campaigns_when_no_attempt_failed(capsys):
    # A campaign that could not be listed fails with nothing listed: the attempt counts
    # alone read "failed 0" beside exit 1.
    from archiver.commands.run import _combined_line
    from archiver.engine.budget import BatchBudget

    totals = {"listed": 10, "archived": 10, "skipped": 0, "quarantined": 0, "failed": 0,
              "held": 0}
    reports = [
        {"totals": totals, "campaigns": [{"status": "done"}, {"status": "failed"}]},
        {"totals": {**totals, "listed": 0, "archived": 0},
         "campaigns": [{"status": "failed"}, {"status": "aborted"}]},
    ]
    _combined_line(reports, 2, BatchBudget())
    line = capsys.readouterr().out.strip()
    assert line.startswith("all 2 of 2 policies: listed 10, archived 10,")
    assert line.endswith("failed 0, held 0; 1 campaign aborted; 2 campaigns failed"), line


def test_the_combined_line_of_an_interrupted_folder_run_says_not_done_not_failed(capsys):
    # The stop's leftovers are "not done" and its campaigns interrupted, as the policy's
    # own summary just said; a campaign that failed on its own is still named.
    from archiver.commands.run import _combined_line
    from archiver.engine.budget import BatchBudget

    totals = {"listed": 10, "archived": 8, "skipped": 0, "quarantined": 0, "failed": 2,
              "held": 0}
    stopping = "the run is stopping; the call was abandoned (a later run finishes it)"
    reports = [
        {"totals": totals, "interrupted": False,
         "campaigns": [{"status": "done", "reason": ""}]},
        {"totals": {**totals, "archived": 0, "failed": 10}, "interrupted": True,
         "campaigns": [{"status": "failed", "reason": "run interrupted"},
                       {"status": "failed", "reason": f"campaign c: {stopping}"},
                       {"status": "failed", "reason": "HTTP 500 from GET /attempts"}]},
    ]
    _combined_line(reports, 3, BatchBudget())
    line = capsys.readouterr().out.strip()
    assert line == ("all 2 of 3 policies: listed 20, archived 8, skipped 0, quarantined 0, "
                    "failed 2, held 0, not done 10; 1 campaign failed"), line

"""``plan`` of an ``api: cxone`` policy: the listing through the cxone backend, decisions by
disposition name, a sample batch event naming its file, and nothing written or changed."""

from __future__ import annotations

import json
import os

from tests.support import REPO, run_cli


def test_plan_lists_a_cxone_policy_and_writes_no_archive_file(tmp_path):
    example = tmp_path / "cxone-export.yaml"
    example.write_text((REPO / "examples" / "cxone-export.yaml").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    result = run_cli(["plan", str(example), "--format", "json"], env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    plan = json.loads(result.stdout)
    assert plan["totals"]["listed"] == 600 and plan["totals"]["archive"] > 0
    outcomes = {o["outcome"] for c in plan["campaigns"] for o in c["outcomes"]}
    assert "Survey Taken" in outcomes
    payloads = plan["samples"]["payloads"]
    assert not [p for p in payloads if p["sink"] == "archive"], "cxone sends no archive body"
    [batch] = [p["body"] for p in payloads if p["event"] == "batch_archived"]
    assert batch["files"][0]["path"].endswith("plan-sample-batch.jsonl.gz")
    assert not (tmp_path / "archive").exists()

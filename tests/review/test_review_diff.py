"""``archiver diff``: exactly the attempts a policy change affects, and nothing else."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from archiver.cli import cli
from archiver.simulator import SimConfig
from archiver.simulator.dataset import CampaignData, derive_tags
from tests.support import REPO, policy_dict, write_policy

CAMPAIGNS = ["d1ff0000-0000-4000-8000-000000000001", "d1ff0000-0000-4000-8000-000000000002"]
SEED, COUNT = 31, 600


def old_and_new(tmp_path: Path) -> tuple[Path, Path]:
    old = policy_dict(CAMPAIGNS)
    new = policy_dict(CAMPAIGNS)
    new["transforms"][0]["rules"] = [{"outcome": "SURVEY_TAKEN", "days": 1095}]
    new["filters"][0]["approved"] = ["SURVEY_TAKEN", "NO_ANSWER", "BUSY"]  # DISCONNECTED dropped
    return write_policy(tmp_path / "old.yaml", old), write_policy(tmp_path / "new.yaml", new)


def well_formed(rec: dict[str, Any]) -> bool:
    """The listing contract, checked here without the archiver's parser."""
    def text(key: str) -> bool:
        return isinstance(rec.get(key), str) and rec[key] != ""

    duration = rec.get("duration")
    retention = rec.get("retentionDays")
    return (
        text("id") and text("contactId") and text("outcomeCode")
        and isinstance(rec.get("disposition"), str)
        and isinstance(duration, int) and not isinstance(duration, bool) and duration >= 0
        and isinstance(rec.get("anonymized"), bool)
        and (retention is None or (isinstance(retention, int) and not isinstance(retention, bool)))
    )


def expected_change(rec: dict[str, Any]) -> str | None:
    """What dropping DISCONNECTED and SURVEY_TAKEN 730 -> 1095 does to one record."""
    if not well_formed(rec):
        return None  # quarantined as malformed by both
    outcome, own = rec["outcomeCode"], rec.get("retentionDays")
    old_archives = rec["anonymized"] and (own is None or 1 <= own <= 3650)
    if outcome == "DISCONNECTED":
        return "archive->skip" if old_archives else "quarantine->skip"
    if outcome == "SURVEY_TAKEN" and rec["anonymized"] and own is None:
        return "retention 730->1095"
    return None


def generated_records() -> dict[str, list[dict[str, Any]]]:
    config = SimConfig(seed=SEED, campaign_ids=CAMPAIGNS, attempts_per_campaign=COUNT)
    return {
        cid: [CampaignData(cid, tag, config).record(i) for i in range(COUNT)]
        for cid, tag in zip(CAMPAIGNS, derive_tags(SEED, CAMPAIGNS), strict=True)
    }


def diff(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, ["diff", *args], input=input, catch_exceptions=False)


def test_diff_lists_exactly_the_attempts_the_change_affects(tmp_path):
    old, new = old_and_new(tmp_path)
    expected = {
        (cid, rec["id"]): kind
        for cid, records in generated_records().items()
        for rec in records
        if (kind := expected_change(rec)) is not None
    }
    kinds = Counter(expected.values())
    assert kinds["archive->skip"] and kinds["retention 730->1095"]

    result = diff(str(old), str(new), "--seed", str(SEED), "--count", str(COUNT), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    found = {(c["campaign_id"], c["attempt_id"]): c["change"] for c in report["changes"]}
    assert found == expected
    assert report["counts"] == dict(kinds)
    assert report["compared"] == COUNT * len(CAMPAIGNS)
    for change in report["changes"]:
        if change["change"] == "retention 730->1095":
            assert change["old"]["retention_days"] == 730 and change["new"]["retention_days"] == 1095

    text = diff(str(old), str(new), "--seed", str(SEED), "--count", str(COUNT), "--max-rows", "3")
    assert text.exit_code == 0
    assert f"{len(expected)} of {COUNT * len(CAMPAIGNS)} attempts change" in text.output
    for kind, n in kinds.items():
        assert any(line.split() == [*kind.split(), str(n)] for line in text.output.splitlines())
    assert f"... and {len(expected) - 3} more attempt(s)" in text.output

    # With none listed there is no "more": the counts stand alone, and the line says how to list.
    none = diff(str(old), str(new), "--seed", str(SEED), "--count", str(COUNT), "--max-rows", "0")
    assert none.exit_code == 0
    assert f"{len(expected)} of {COUNT * len(CAMPAIGNS)} attempts change" in none.output
    assert "more attempt" not in none.output
    assert "changed attempts not listed (--max-rows 0;" in none.output
    assert not any(line.startswith("campaign ") for line in none.output.splitlines())


def test_exit_code_flag_and_identical_policies(tmp_path):
    old, new = old_and_new(tmp_path)
    assert diff(str(old), str(new), "--count", "50", "--exit-code").exit_code == 1
    assert diff(str(old), str(new), "--count", "50").exit_code == 0
    same = diff(str(old), str(old), "--count", "50", "--exit-code")
    assert same.exit_code == 0
    assert "no decision or retention changes in 100 attempts" in same.output


def test_old_policy_from_stdin_resolves_templates_against_the_current_folder(tmp_path, monkeypatch):
    """As in `git show main:policies/x.yaml | archiver diff - policies/x.yaml`."""
    policy = REPO / "policies" / "survey-retention.yaml"
    doc = yaml.safe_load(policy.read_text())
    doc["transforms"][0]["default_days"] = 400
    changed = tmp_path / "survey-retention.yaml"
    changed.write_text(yaml.safe_dump(doc, sort_keys=False))
    # A copy: a symlink leading out of the policy's folder is refused like any other path.
    shutil.copytree(REPO / "policies" / "templates", tmp_path / "templates")
    monkeypatch.chdir(REPO / "policies")  # the stdin policy's templates/ are found from here
    result = diff("-", str(changed), "--fixtures", "survey-retention.test.yaml", "--format", "json",
                  input=policy.read_text())
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["old"]["source"] == "<stdin>"
    assert set(report["counts"]) == {"retention 365->400"}
    changed_ids = {c["attempt_id"] for c in report["changes"]}
    assert "att-0001" in changed_ids and "att-0030" not in changed_ids  # rule-kept surveys stay


def test_fixtures_file_of_listing_records(tmp_path):
    old, new = old_and_new(tmp_path)
    base = {"contactId": "c", "disposition": "X", "duration": 1, "anonymized": True}
    records = [
        {**base, "id": "r1", "outcomeCode": "DISCONNECTED"},
        {**base, "id": "r2", "outcomeCode": "DISCONNECTED", "anonymized": False},
        {**base, "id": "r3", "outcomeCode": "SURVEY_TAKEN"},
        {**base, "id": "r4", "outcomeCode": "SURVEY_TAKEN", "retentionDays": 90},
        {**base, "id": "r5", "outcomeCode": "SURVEY_TAKEN", "retentionDays": 9000},
        {**base, "id": "r6", "outcomeCode": "NO_ANSWER"},
        {"id": "r7", "outcomeCode": "DISCONNECTED"},
    ]
    fixtures = tmp_path / "records.json"
    fixtures.write_text(json.dumps(records))
    result = diff(str(old), str(new), "--fixtures", str(fixtures), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {c["attempt_id"]: c["change"] for c in report["changes"]} == {
        "r1": "archive->skip",
        "r2": "quarantine->skip",
        "r3": "retention 730->1095",
    }
    assert report["compared"] == len(records)



def test_text_of_the_records_is_shown_escaped_one_attempt_one_line(tmp_path):
    old, new = old_and_new(tmp_path)
    base = {"contactId": "c", "disposition": "X", "duration": 1, "anonymized": True}
    odd_id = "r1\x1b]0;title\x07\n  r9  DISCONNECTED  skip -> archive"
    fixtures = tmp_path / "records.json"
    fixtures.write_text(json.dumps([{**base, "id": odd_id, "outcomeCode": "DISCONNECTED"}]))
    result = diff(str(old), str(new), "--fixtures", str(fixtures))
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output, result.output
    [line] = [x for x in result.output.splitlines() if "DISCONNECTED" in x]
    assert line.startswith("  r1\\x1b]0;title\\x07\\n  r9"), line

def test_a_new_campaign_and_an_aborting_filter_show_per_campaign(tmp_path):
    old_doc = policy_dict(CAMPAIGNS[:1])
    new_doc = policy_dict(CAMPAIGNS)
    new_doc["filters"][1]["on_violation"] = "abort"
    old = write_policy(tmp_path / "old.yaml", old_doc)
    new = write_policy(tmp_path / "new.yaml", new_doc)
    result = diff(str(old), str(new), "--seed", "4", "--count", "900", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    states = {c["id"]: (c["old"], c["new"]) for c in report["campaigns"]}
    assert states == {CAMPAIGNS[0]: ("ok", "would_abort"), CAMPAIGNS[1]: ("absent", "would_abort")}
    kinds = set(report["counts"])
    assert "quarantine->abort" in kinds
    assert {k for k in kinds if k.startswith("absent->")} >= {"absent->archive", "absent->skip"}
    assert all(c["campaign_id"] == CAMPAIGNS[1] for c in report["changes"]
               if c["change"].startswith("absent->"))
    text = diff(str(old), str(new), "--seed", "4", "--count", "900")
    assert text.exit_code == 0, text.output
    assert f"campaign {CAMPAIGNS[0]}: runs -> would abort" in text.output
    assert f"campaign {CAMPAIGNS[1]}: not in policy -> would abort" in text.output


def test_options_that_would_be_ignored_are_refused(tmp_path):
    old, new = old_and_new(tmp_path)
    records = tmp_path / "records.json"
    records.write_text("[]")
    seeded = diff(str(old), str(new), "--simulator", "--seed", "5")
    assert seeded.exit_code == 2 and "--seed cannot be used with --simulator" in seeded.output
    counted = diff(str(old), str(new), "--fixtures", str(records), "--count", "10")
    assert counted.exit_code == 2 and "--count cannot be used with --fixtures" in counted.output


def test_a_folder_is_a_usage_error_as_plan_says_of_one(tmp_path):
    old, new = old_and_new(tmp_path)
    folder = diff(str(tmp_path), str(new))
    assert folder.exit_code == 2, folder.output
    assert f"{tmp_path} is a folder: diff compares two policy files" in folder.output
    assert diff(str(old), str(tmp_path)).exit_code == 2
    plan = CliRunner().invoke(cli, ["plan", str(tmp_path)], catch_exceptions=False)
    assert plan.exit_code == 2

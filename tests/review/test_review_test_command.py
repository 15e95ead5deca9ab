"""``archiver test``: the shipped policies' cases pass, a wrong expectation fails readably."""

from __future__ import annotations

import json
import shutil

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from archiver.cli import cli
from archiver.review.testfile import SCHEMA_DOC
from tests.support import REPO

SHIPPED_POLICIES = sorted((REPO / "policies").glob("*.yaml"))
SHIPPED_POLICIES = [p for p in SHIPPED_POLICIES if not p.name.endswith(".test.yaml")]
SHIPPED = [*SHIPPED_POLICIES, REPO / "examples" / "demo.yaml"]


def invoke(*args: str):
    return CliRunner().invoke(cli, ["test", *args], catch_exceptions=False)


def survey_retention_in(folder):
    """A copy of the shipped survey-retention policy (and its templates) in ``folder``: a
    test file names a policy of its own repository."""
    shutil.copytree(REPO / "policies" / "templates", folder / "templates")
    return shutil.copy(REPO / "policies" / "survey-retention.yaml", folder)


def test_every_shipped_policy_has_passing_tests(monkeypatch):
    monkeypatch.chdir(REPO)
    assert len(SHIPPED) >= 3
    for policy in SHIPPED:
        assert policy.with_name(policy.stem + ".test.yaml").is_file(), f"{policy} has no tests"
    result = invoke("policies", "examples/demo.yaml")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-1].endswith(" passed, 0 failed")
    assert int(lines[-1].split()[0]) >= 50
    assert "policies/survey-retention.test.yaml::a record without contactId is quarantined PASSED" in lines


@pytest.mark.parametrize("policy", SHIPPED, ids=lambda p: p.stem)
def test_shipped_tests_cover_every_branch(policy):
    cases = yaml.safe_load(policy.with_name(policy.stem + ".test.yaml").read_text())["cases"]
    decisions = {c["expect"]["decision"] for c in cases}
    assert {"archive", "skip", "quarantine"} <= decisions
    reasons = " | ".join(c["expect"].get("reason", "") for c in cases)
    assert "not approved" in reasons and "not anonymized" in reasons
    assert "`contactId` is missing" in reasons
    attempts = [c["attempt"] for c in cases if isinstance(c["attempt"], dict)]
    assert any("retentionDays" in a and a["retentionDays"] is None for a in attempts)
    assert any(isinstance(a.get("retentionDays"), int) for a in attempts)
    assert any(k in c["expect"] for c in cases for k in ("webhook", "archive", "audit_log"))


@pytest.mark.parametrize("policy", SHIPPED, ids=lambda p: p.stem)
def test_shipped_tests_catch_a_changed_policy(policy, tmp_path):
    """Each shipped test file notices when its policy's decisions change."""
    copy = tmp_path / policy.name
    shutil.copytree(policy.parent / "templates", tmp_path / "templates")
    shutil.copy(policy.with_name(policy.stem + ".test.yaml"), tmp_path)
    doc = yaml.safe_load(policy.read_text())
    doc["transforms"][0]["default_days"] += 1
    ruled = {rule["outcome"] for rule in doc["transforms"][0].get("rules", [])}
    approved = doc["filters"][0]["approved"]
    approved.remove(next(o for o in approved if o not in ruled))
    copy.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = invoke(str(tmp_path))
    assert result.exit_code == 1
    assert " FAILED" in result.output
    assert "E   retention_days: expected" in result.output
    assert "E   decision: expected archive, got skip" in result.output


WRONG = """\
version: 1
policy: {policy}
defaults: {{contactId: c-1, disposition: COMPLETED, duration: 30, anonymized: true}}
cases:
  - name: right
    attempt: {{id: a-1, outcomeCode: NO_ANSWER}}
    expect: {{decision: archive, retention_days: 365}}
  - name: wrong retention
    attempt: {{id: a-2, outcomeCode: SURVEY_TAKEN}}
    expect: {{decision: archive, retention_days: 999, webhook: {{campaign_id: nope}}}}
  - name: wrong decision
    attempt: {{id: a-3, outcomeCode: DO_NOT_CALL}}
    expect: {{decision: quarantine, reason: not anonymized}}
"""


def test_a_wrong_expectation_fails_with_a_readable_diff(tmp_path):
    test_file = tmp_path / "wrong.test.yaml"
    test_file.write_text(WRONG.format(policy=survey_retention_in(tmp_path)))
    result = invoke(str(test_file))
    assert result.exit_code == 1
    out = result.output
    assert f"{test_file}::right PASSED" in out
    assert f"{test_file}::wrong retention FAILED" in out
    assert f"{test_file}::wrong decision FAILED" in out
    assert "E   retention_days: expected 999, got 730" in out
    assert 'E   webhook.campaign_id: expected "nope", got "a1b2c3d4-e5f6-7890-abcd-ef1234567890"' in out
    assert "-retention_days: 999\n+retention_days: 730" in out
    assert ("-decision: quarantine\n-reason: contains 'not anonymized'\n"
            "+decision: skip\n+reason: outcome DO_NOT_CALL not approved") in out
    assert f"{test_file}:8: attempt " in out  # where each failing case starts
    assert f"{test_file}:11: attempt " in out
    assert out.splitlines()[-1] == "1 passed, 2 failed"



def test_a_case_name_cannot_forge_a_line_or_drive_the_terminal(tmp_path):
    """A test file is reviewed text: its names and values are shown escaped, so one case
    is one line whatever its name says."""
    test_file = tmp_path / "odd.test.yaml"
    test_file.write_text(f"""version: 1
policy: {survey_retention_in(tmp_path)}
defaults: {{contactId: c-1, disposition: COMPLETED, duration: 61, anonymized: true}}
cases:
  - name: "odd\\n\\u001b]0;title\\u0007{test_file}::fine PASSED"
    attempt: {{id: "a-1\\u001b[2J", outcomeCode: SURVEY_TAKEN}}
    expect: {{decision: skip, reason: "\\u001b[31m"}}
""")
    result = invoke(str(test_file))
    assert result.exit_code == 1
    out = result.output
    assert "\x1b" not in out and "\x07" not in out, out
    assert f"{test_file}::fine PASSED" not in out.splitlines()
    assert f"{test_file}::odd\\n\\x1b]0;title\\x07{test_file}::fine PASSED FAILED" in out
    assert out.splitlines()[-1] == "0 passed, 1 failed"

def test_invalid_test_files_are_errors_with_lines(tmp_path):
    (tmp_path / "p.yaml").write_text((REPO / "policies" / "survey-retention.yaml").read_text())
    shutil.copytree(REPO / "policies" / "templates", tmp_path / "templates")
    (tmp_path / "p.test.yaml").write_text(
        "version: 1\ncases:\n  - name: a\n    attempt: {id: x}\n"
        "    expect: {decision: skip, retention_days: 3}\n"
        "  - name: a\n    atempt: {}\n    expect: {decision: archive, retention_days: 1}\n"
    )
    (tmp_path / "empty.yaml").write_text((tmp_path / "p.yaml").read_text())
    (tmp_path / "empty.test.yaml").write_text("version: 1\ncases: []\n")
    result = invoke(str(tmp_path))
    assert result.exit_code == 1
    out = result.output
    assert f"{tmp_path}/p.test.yaml:5:" in out and "only allowed with decision: archive" in out
    assert f"{tmp_path}/p.test.yaml:5:" in out and "missing `reason`" in out
    assert f"{tmp_path}/p.test.yaml:7:5: F002 cases[1]: unknown key `atempt`" in out
    assert f"{tmp_path}/empty.test.yaml:2:8: F002 cases: a test file needs at least one case" in out
    assert out.splitlines()[-1] == "0 passed, 0 failed, 2 errors"


def test_a_case_naming_a_foreign_campaign_or_a_missing_policy_is_an_error(tmp_path):
    policy = survey_retention_in(tmp_path)
    bad = tmp_path / "x.test.yaml"
    bad.write_text(
        f"version: 1\npolicy: {policy}\ncases:\n  - name: a\n    campaign: nope\n"
        "    attempt: {}\n    expect: {decision: quarantine, reason: malformed}\n"
    )
    orphan = tmp_path / "orphan.test.yaml"
    orphan.write_text("version: 1\ncases:\n  - name: a\n    attempt: {}\n"
                      "    expect: {decision: quarantine, reason: malformed}\n")
    result = invoke(str(bad), str(orphan))
    assert result.exit_code == 1
    assert f"{bad}:5:15: F004 campaign `nope` is not one of the policy's campaigns" in result.output
    assert f"{orphan}:1:1: F005 policy file {tmp_path}/orphan.yaml not found" in result.output


def test_no_test_files_is_an_error(tmp_path):
    result = invoke(str(tmp_path))
    assert result.exit_code == 1
    assert "no policy test files" in result.output


def test_schema_is_published_and_shipped_files_follow_it():
    published = json.loads((REPO / "schemas" / "policy-test.schema.json").read_text())
    assert published == SCHEMA_DOC
    for policy in SHIPPED:
        doc = yaml.safe_load(policy.with_name(policy.stem + ".test.yaml").read_text())
        jsonschema.validate(doc, published)


def test_an_aborting_filter_is_expected_as_abort(tmp_path):
    policy = (REPO / "policies" / "survey-retention.yaml").read_text()
    (tmp_path / "p.yaml").write_text(policy.replace("on_violation: quarantine", "on_violation: abort"))
    shutil.copytree(REPO / "policies" / "templates", tmp_path / "templates")
    (tmp_path / "p.test.yaml").write_text(
        "version: 1\n"
        "defaults: {contactId: c, disposition: D, duration: 1, anonymized: true}\n"
        "cases:\n"
        "  - name: stops the campaign\n"
        "    attempt: {id: x-1, outcomeCode: NO_ANSWER, anonymized: false}\n"
        "    expect: {decision: abort, reason: 'attempt x-1 is not anonymized (on_violation: abort)'}\n"
        "  - name: others are still decided\n"
        "    attempt: {id: x-2, outcomeCode: NO_ANSWER}\n"
        "    expect: {decision: archive, retention_days: 365}\n"
    )
    result = invoke(str(tmp_path / "p.yaml"))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "2 passed, 0 failed"


@pytest.mark.parametrize("written", ["{outside}", "../../outside.yaml", "{repo}/.git/config.yaml"])
def test_a_test_file_names_no_policy_outside_its_repository(tmp_path, written):
    # A test file is reviewed text that `archiver test` reads in CI: the policy it names
    # is read, and a file that is not a policy has its values quoted in the errors.
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "policies").mkdir()
    outside = tmp_path / "outside.yaml"
    outside.write_text("version: gho_NOT_FOR_THE_CI_LOG\n")
    (repo / ".git" / "config.yaml").write_text("version: gho_NOT_FOR_THE_CI_LOG\n")
    written = written.format(outside=outside, repo=repo)
    test_file = repo / "policies" / "p.test.yaml"
    test_file.write_text(f"version: 1\npolicy: {written}\ncases:\n  - name: a\n"
                         "    attempt: {}\n    expect: {decision: quarantine, reason: x}\n")
    result = invoke(str(repo / "policies"))
    assert result.exit_code == 1
    assert "gho_NOT_FOR_THE_CI_LOG" not in result.output, result.output
    assert f"{test_file}:2:9: F007 policy `{written}` resolves " in result.output, result.output

"""``archiver diff`` compares policies on records of their own backend: a cxone policy's
changes show on generated cxone contacts (disposition names, not campaign-archive
codes), policies of two backends are not compared on one of them, and an outcome a
policy names that no fixture record carries is said, never passed off as "no change"."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from archiver.cli import cli
from archiver.simulator.cxone.config import DEFAULT_DISPOSITIONS
from tests.support import REPO, policy_dict, write_policy

EXAMPLE = REPO / "examples" / "cxone-export.yaml"
CAMPAIGN = "d1ff0000-0000-4000-8000-000000000001"


def diff(*args: str):
    return CliRunner().invoke(cli, ["diff", *args], catch_exceptions=False)


def cxone_copy(path: Path, change=None) -> Path:
    """examples/cxone-export.yaml, written to ``path`` after ``change(doc)``."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["source"]["since"] = "2026-01-01T00:00:00Z"  # as written, not as YAML's datetime
    if change is not None:
        change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_a_cxone_retention_change_is_reported(tmp_path):
    """The audit's case: `days: 730` -> `days: 800` on examples/cxone-export.yaml."""
    old = tmp_path / "old.yaml"
    old.write_text(EXAMPLE.read_text())
    new = tmp_path / "new.yaml"
    new.write_text(EXAMPLE.read_text().replace("days: 730", "days: 800"))

    text = diff("--exit-code", str(old), str(new))
    assert text.exit_code == 1, text.output
    assert "no decision or retention changes" not in text.output
    assert "retention 730->800" in text.output
    assert "Survey Taken" in text.output
    assert "warning" not in text.output

    report = json.loads(diff(str(old), str(new), "--format", "json").output)
    assert set(report["counts"]) == {"retention 730->800"}
    assert {c["outcome"] for c in report["changes"]} == {"Survey Taken"}
    assert report["warnings"] == []


def test_approving_or_unapproving_a_cxone_outcome_is_reported(tmp_path):
    old = cxone_copy(tmp_path / "old.yaml")

    def approve(*names: str):
        def change(doc):
            doc["filters"][0]["approved"] += list(names)
        return change

    # A disposition the tenant (and the cxone simulator) has, and one of a tenant's own.
    for name in ("Answering Machine", "Left Voicemail"):
        new = cxone_copy(tmp_path / "new.yaml", approve(name))
        result = diff("--exit-code", str(old), str(new), "--format", "json")
        assert result.exit_code == 1, result.output
        report = json.loads(result.output)
        assert set(report["counts"]) == {"skip->archive"}, name
        assert {c["outcome"] for c in report["changes"]} == {name}
        assert all(c["new"]["retention_days"] == 365 for c in report["changes"])

    def unapprove(doc):
        doc["filters"][0]["approved"].remove("Busy")

    new = cxone_copy(tmp_path / "new.yaml", unapprove)
    result = diff("--exit-code", str(old), str(new))
    assert result.exit_code == 1, result.output
    assert "archive->skip" in result.output and "Busy" in result.output


def test_generated_cxone_records_carry_every_named_and_known_disposition(tmp_path):
    """A rule for a tenant's own disposition, named only by the new policy, is reached."""
    old = cxone_copy(tmp_path / "old.yaml")

    def change(doc):
        doc["filters"][0]["approved"].append("Sale Made")
        doc["transforms"][0]["rules"].append({"outcome": "Sale Made", "days": 2555})

    new = cxone_copy(tmp_path / "new.yaml", change)
    result = diff(str(old), str(new), "--format", "json", "--count", "50")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["counts"] == {"skip->archive": len(report["changes"])}
    assert {c["new"]["retention_days"] for c in report["changes"]} == {2555}
    same = json.loads(diff(str(old), str(old), "--format", "json").output)
    assert same["changed"] == 0 and same["warnings"] == []
    # Each campaign's records: every disposition of the CXone simulator's tenant, and
    # contacts without one. Swapping approved for unapproved changes each of them.
    assert "cxone" in same["fixtures"]
    approved = set(yaml.safe_load(EXAMPLE.read_text())["filters"][0]["approved"])
    others = [n for n in (*DEFAULT_DISPOSITIONS, "(none)") if n not in approved]
    swapped = cxone_copy(tmp_path / "swapped.yaml",
                         lambda d: d["filters"][0].update(approved=others))
    report = json.loads(diff(str(old), str(swapped), "--format", "json").output)
    by_outcome = {(c["outcome"], c["change"]) for c in report["changes"]}
    assert by_outcome == {(n, "archive->skip") for n in approved} | {
        (n, "skip->archive") for n in others}
    assert {c["campaign_id"] for c in report["changes"]} == {"1834501", "1834502"}


def test_policies_of_different_backends_are_not_compared_on_generated_records(tmp_path):
    old = write_policy(tmp_path / "old.yaml", policy_dict([CAMPAIGN]))
    new = cxone_copy(tmp_path / "new.yaml")
    result = diff(str(old), str(new))
    assert result.exit_code == 2, result.output
    assert "campaign-archive" in result.output and "cxone" in result.output
    assert "--fixtures" in result.output
    simulated = diff(str(old), str(new), "--simulator")
    assert simulated.exit_code == 2, simulated.output


def test_different_backends_on_given_fixtures_compare_with_a_warning(tmp_path):
    old = write_policy(tmp_path / "old.yaml", policy_dict([CAMPAIGN]))
    new = cxone_copy(tmp_path / "new.yaml")
    records = tmp_path / "records.json"
    base = {"contactId": "c", "disposition": "X", "duration": 1, "anonymized": True}
    records.write_text(json.dumps([{**base, "id": "r1", "outcomeCode": "Survey Taken"}]))
    result = diff(str(old), str(new), "--fixtures", str(records))
    assert result.exit_code == 0, result.output
    assert "warning: OLD lists from campaign-archive, NEW from cxone" in result.output


def test_an_outcome_no_fixture_record_carries_is_warned_of(tmp_path):
    """The guard: records that never reach what a policy names say so, whatever the
    backend, instead of a bare "no change"."""
    old_doc = policy_dict([CAMPAIGN])
    new_doc = policy_dict([CAMPAIGN])
    new_doc["transforms"][0]["rules"] = [{"outcome": "SURVEY_TAKEN", "days": 900}]
    old = write_policy(tmp_path / "old.yaml", old_doc)
    new = write_policy(tmp_path / "new.yaml", new_doc)
    records = tmp_path / "records.json"
    base = {"contactId": "c", "disposition": "X", "duration": 1, "anonymized": True}
    records.write_text(json.dumps([{**base, "id": "r1", "outcomeCode": "NO_ANSWER"}]))

    result = diff("--exit-code", str(old), str(new), "--fixtures", str(records))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    [warning] = [x for x in lines if x.startswith("warning:") and "SURVEY_TAKEN" in x]
    assert "OLD and NEW name" in warning
    assert any("not every outcome" in x for x in lines), result.output
    report = json.loads(diff(str(old), str(new), "--fixtures", str(records),
                             "--format", "json").output)
    assert any("SURVEY_TAKEN" in w for w in report["warnings"])
    assert report["unreached_outcomes"] == ["BUSY", "DISCONNECTED", "SURVEY_TAKEN"]

    # Records that reach every named outcome: no warning.
    records.write_text(json.dumps([
        {**base, "id": f"r{i}", "outcomeCode": code}
        for i, code in enumerate(["SURVEY_TAKEN", "NO_ANSWER", "BUSY", "DISCONNECTED"])
    ]))
    reached = diff(str(old), str(new), "--fixtures", str(records))
    assert "warning" not in reached.output and "retention 730->900" in reached.output


def test_simulator_header_states_the_attempts_compared(tmp_path):
    old = cxone_copy(tmp_path / "old.yaml")
    new = tmp_path / "new.yaml"
    new.write_text(EXAMPLE.read_text().replace("days: 730", "days: 800"))
    result = diff(str(old), str(new), "--simulator", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert report["compared"] == 600
    assert "300 attempts in each of 2 campaign(s)" in report["fixtures"], report["fixtures"]
    assert "1000" not in report["fixtures"]
    assert set(report["counts"]) == {"retention 730->800"}


def test_a_calling_list_policy_is_compared_on_calling_list_attempts(tmp_path):
    def calling_list(doc):
        doc["source"] = {"type": "call_list_attempts", "call_list": "4412"}
        doc["campaigns"] = doc["campaigns"][:1]

    def and_voicemail(doc):
        calling_list(doc)
        doc["filters"][0]["approved"].append("Answering Machine")

    old = cxone_copy(tmp_path / "old.yaml", calling_list)
    new = cxone_copy(tmp_path / "new.yaml", and_voicemail)
    result = diff("--exit-code", str(old), str(new), "--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert "call_list_attempts" in report["fixtures"]
    assert report["counts"] == {"skip->archive": report["changed"]}
    assert {c["outcome"] for c in report["changes"]} == {"Answering Machine"}
    # A completed-contacts policy lists other records: refused, not compared.
    other = diff(str(old), str(EXAMPLE))
    assert other.exit_code == 2 and "cxone call_list_attempts" in other.output


def test_count_is_refused_with_the_cxone_simulator(tmp_path):
    """The CXone simulator's tenant has its own number of contacts: --count would be
    ignored, so it is refused."""
    policy = cxone_copy(tmp_path / "p.yaml")
    result = diff(str(policy), str(policy), "--simulator", "--count", "5")
    assert result.exit_code == 2, result.output
    assert "--count cannot be used with --simulator on a cxone policy" in result.output

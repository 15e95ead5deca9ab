"""``connection.api``: each API's keys, what each needs, and stages that read record
fields the policy's backend does not provide, refused at their line by ``validate``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver.cli import cli

CXONE = """\
version: 1
name: cxone-policy
connection:
  api: cxone
  tenant_id: 5c2b8f3e-7d41-4b1a-9e0f-2a6c8d4e1b77
campaigns:
  - id: "1834501"
    action: {action}
{more_campaigns}source:
  type: {source_type}
{source_extra}filters:
  - type: outcome
    approved: [Survey Taken, No Answer]
{extra_filter}transforms:
  - type: retention
    default_days: 365
    use_record_value: {use_record_value}
sinks:
  - type: file
    path: {file_path}
"""


def cxone(**over: str) -> str:
    values = {
        "action": "export", "source_type": "completed_contacts", "source_extra": "",
        "more_campaigns": "",
        "extra_filter": "", "use_record_value": "false", "file_path": "archive/{campaign}/{date}/",
    }
    values.update(over)
    return CXONE.format(**values).replace("{{", "{").replace("}}", "}")


def validate(tmp_path: Path, text: str) -> tuple[int, str]:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = CliRunner().invoke(cli, ["validate", "policy.yaml"])
    finally:
        os.chdir(old)
    return result.exit_code, result.output


def test_a_cxone_export_policy_without_an_anonymized_filter_is_valid(tmp_path):
    code, out = validate(tmp_path, cxone())
    assert code == 0, out


@pytest.mark.parametrize(
    ("over", "where", "code", "words"),
    [
        ({"extra_filter": "  - type: anonymized\n"}, "14:11", "V018",
         "reads `anonymized`, which records of `api: cxone (completed_contacts)` do not have"),
        ({"use_record_value": "true"}, "15:11", "V018",
         "reads `retention_days`, which records of `api: cxone"),
        ({"action": "retire"}, "8:13", "V020", "needs `source.type: call_list_attempts`"),
        ({"source_type": "call_list_attempts"}, "10:9", "V021", "needs `source.call_list`"),
        ({"source_extra": "  since: yesterday\n"}, "11:10", "V022",
         "not a UTC timestamp: write it like 2026-11-01T00:00:00Z"),
        # Written right, but no such time: a date the calendar has not, an hour past 23.
        ({"source_extra": "  since: \"2026-02-30T00:00:00Z\"\n"}, "11:10", "V022",
         "not a UTC timestamp: no such time (day is out of range for month)"),
        ({"source_extra": "  since: \"2026-11-01T25:00:00Z\"\n"}, "11:10", "V022",
         "not a UTC timestamp: no such time (hour must be in 0..23)"),
        ({"source_type": "call_list_attempts", "source_extra": '  call_list: "4412"\n',
          "more_campaigns": '  - id: "1834502"\n'}, "9:9", "V025",
         "campaign 1834502: `source.type: call_list_attempts` lists one calling list"),
        ({"file_path": "../elsewhere/{campaign}/"}, "20:11", "V014",
         "outside the policy's repository"),
        # The policy file itself as a folder: the run failed there after archiving.
        ({"file_path": "policy.yaml/{campaign}/"}, "20:11", "V026",
         "archive folder `policy.yaml/{campaign}/` runs through `policy.yaml`, a file, not a "
         "folder"),
        # A name no file system holds: said as what it is, not as a failed plugin check.
        ({"file_path": "x" * 300 + "/{campaign}/"}, "20:11", "V026",
         f"runs through `{'x' * 300}`, which cannot be looked at (File name too long)"),
    ],
)
def test_cxone_policies_are_refused_at_the_line_at_fault(tmp_path, over, where, code, words):
    status, out = validate(tmp_path, cxone(**over))
    assert status == 78, out
    assert f"policy.yaml:{where}: {code}" in out
    assert words in out


def test_retire_with_a_calling_list_is_valid(tmp_path):
    text = cxone(action="retire", source_type="call_list_attempts",
                 source_extra="  call_list: \"4412\"\n")
    code, out = validate(tmp_path, text)
    assert code == 0, out


def test_outcome_codes_are_not_checked_against_a_list_on_cxone(tmp_path):
    # Dispositions are the tenant's own names: nothing to check them against (V017).
    code, out = validate(tmp_path, cxone().replace("Survey Taken, No Answer", "Whatever We Call It"))
    assert code == 0, out


def test_cxone_keys_on_a_campaign_archive_policy_are_refused(tmp_path):
    text = """\
version: 1
name: tutorial
connection:
  base_url: embedded
  tenant_id: t-1
campaigns:
  - id: c1
    action: export
filters:
  - type: anonymized
"""
    status, out = validate(tmp_path, text)
    assert status == 78
    assert "policy.yaml:5:3: V019 `connection.tenant_id` is for `connection.api: cxone`" in out
    assert "policy.yaml:8:5: V019 `campaigns.action` is for `connection.api: cxone`" in out


def test_a_cxone_policy_needs_its_tenant_unless_embedded(tmp_path):
    text = cxone().replace("  tenant_id: 5c2b8f3e-7d41-4b1a-9e0f-2a6c8d4e1b77\n", "")
    status, out = validate(tmp_path, text)
    assert status == 78 and "V021 `connection.tenant_id` is required" in out
    embedded = text.replace("  api: cxone\n", "  api: cxone\n  base_url: embedded\n")
    status, out = validate(tmp_path, embedded)
    assert status == 0, out


def test_the_anonymized_filter_is_still_required_on_campaign_archive(tmp_path):
    text = """\
version: 1
name: tutorial
connection:
  base_url: embedded
campaigns:
  - id: c1
"""
    status, out = validate(tmp_path, text)
    assert status == 78 and "V016" in out


def test_an_embedded_webhook_on_a_cxone_policy_is_refused_at_its_line(tmp_path):
    # The cxone simulator has no receiver: the run would fail only once it started.
    text = cxone().replace("  tenant_id: 5c2b8f3e-7d41-4b1a-9e0f-2a6c8d4e1b77\n",
                           "  base_url: embedded\n")
    text += "  - type: webhook\n    url: embedded\n    secret_env: DW_HOOK\n"
    status, out = validate(tmp_path, text)
    assert status == 78, out
    assert "policy.yaml:22:10: V013 webhook `url: embedded` is the built-in campaign-archive" in out
    assert "the cxone simulator has none" in out


def test_an_embedded_webhook_on_a_cxone_tenant_policy_is_not_told_to_embed_the_connection(
    tmp_path,
):
    # `connection.base_url: embedded` would not give it a receiver either.
    text = cxone() + "  - type: webhook\n    url: embedded\n    secret_env: DW_HOOK\n"
    status, out = validate(tmp_path, text)
    assert status == 78, out
    assert "V013 webhook `url: embedded` is the built-in campaign-archive" in out
    assert "the cxone simulator has none" in out
    assert "needs `connection.base_url: embedded`" not in out


def test_a_run_of_a_cxone_policy_with_an_embedded_webhook_says_why_it_cannot(tmp_path):
    text = cxone().replace("  tenant_id: 5c2b8f3e-7d41-4b1a-9e0f-2a6c8d4e1b77\n",
                           "  base_url: embedded\n")
    text += "  - type: webhook\n    url: embedded\n    secret_env: DW_HOOK\n"
    (tmp_path / "policy.yaml").write_text(text)
    result = CliRunner().invoke(
        cli, ["run", str(tmp_path / "policy.yaml"), "--state", str(tmp_path / "state")],
        env={"DW_HOOK": "whsec_" + "QUJD" * 8},
    )
    assert result.exit_code == 78, result.output
    assert "the cxone simulator has none" in result.output
    assert "needs connection.base_url: embedded" not in result.output

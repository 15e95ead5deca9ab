"""`archiver evidence`: one run's bundle, checked offline with only the public key;
each kind of tampering is named by the part it breaks."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from archiver.audit.chain import line_hash
from tests.support import REPO, demo_at_test_pace, ed25519_key_pair, run_cli


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[Path, Path, str]:
    """Two signed demo runs; the bundle of the second, and the public key."""
    root = tmp_path_factory.mktemp("evidence")
    private, public = ed25519_key_pair(root)
    repo = root / "repo"
    shutil.copytree(REPO / "examples", repo / "examples",
                    ignore=shutil.ignore_patterns(".archiver", "audit", "*.approved"))
    demo_at_test_pace(repo / "examples" / "demo.yaml")
    assert run_cli(["approve", "examples/demo.yaml", "--by", "alice@example.com"], _env(),
                   cwd=repo).returncode == 0
    report = root / "report.json"
    for _ in range(2):
        result = run_cli(["run", "examples/demo.yaml", "--state", str(repo / "state"), "--quiet",
                          "--report", str(report)], _env(ARCHIVER_SIGNING_KEY=str(private)),
                         cwd=repo)
        assert result.returncode == 0, result.stderr
    run_id = json.loads(report.read_text())["run_id"]
    bundle = root / "bundle.json"
    made = run_cli(["evidence", run_id[:-2], "--out", str(bundle), "--state", str(repo / "state")],
                   _env(), cwd=repo)
    assert made.returncode == 0, made.stderr
    assert f"run {run_id}" in made.stdout
    return bundle, public, run_id


def _verify(bundle: Path, public: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(["evidence", "verify", str(bundle), "--public-key", str(public)], _env())


def _tampered(made, tmp_path, change) -> Path:
    bundle, _, _ = made
    data = json.loads(bundle.read_text())
    change(data)
    out = tmp_path / "tampered.json"
    out.write_text(json.dumps(data))
    return out


def test_a_bundle_verifies_offline_part_by_part(made, tmp_path):
    bundle, public, run_id = made
    moved = tmp_path / "elsewhere.json"  # no state folder, no repository beside it
    shutil.copy(bundle, moved)
    result = _verify(moved, public)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "OK   policy:" in out
    # an unsigned approval of a run against the simulator, which needed none
    assert "NOTE approval: approved by alice@example.com" in out
    assert f"chain to the signed digest of run {run_id}" in out
    assert "OK   report:" in out
    data = json.loads(bundle.read_text())
    assert data["audit"][0]["anchor"] is not None  # the second run follows the first's digest


def test_an_edited_policy_text_is_named(made, tmp_path):
    def change(data):
        data["policy"]["text"] += "\n# not what ran\n"

    result = _verify(_tampered(made, tmp_path, change), made[1])
    assert result.returncode == 1
    assert "FAIL policy:" in result.stdout


def test_edited_report_counts_are_named(made, tmp_path):
    def change(data):
        data["report"]["totals"]["archived"] += 1

    result = _verify(_tampered(made, tmp_path, change), made[1])
    assert result.returncode == 1
    assert "FAIL report: the report's counts differ from the signed run_finished line: archived" \
        in result.stdout


def test_a_rechained_audit_line_is_named(made, tmp_path):
    def change(data):
        lines = [json.loads(x) for x in data["audit"][0]["lines"]]
        lines[1]["outcomes"] = {}
        prev = lines[0]["prev_hash"]
        for line in lines:
            line["prev_hash"] = prev
            line["hash"] = prev = line_hash(line)
        data["audit"][0]["lines"] = [json.dumps(x) for x in lines]

    result = _verify(_tampered(made, tmp_path, change), made[1])
    assert result.returncode == 1
    assert "FAIL audit log demo-audit.jsonl: the lines end at seq" in result.stdout


def test_a_removed_line_is_named(made, tmp_path):
    def change(data):
        del data["audit"][0]["lines"][0]

    result = _verify(_tampered(made, tmp_path, change), made[1])
    assert result.returncode == 1
    assert "does not follow the line before it" in result.stdout


def test_a_replaced_digest_is_named(made, tmp_path):
    def change(data):
        data["audit"][0]["digest"]["last_seq"] -= 1

    result = _verify(_tampered(made, tmp_path, change), made[1])
    assert result.returncode == 1
    assert "does not verify with this public key" in result.stdout


def test_a_broken_approval_file_is_bundled_as_no_approval(made, tmp_path):
    # As a missing approval: the bundle is written without one (it was exit 77, the
    # code of a run refused for want of an approval, and no bundle at all).
    bundle, public, run_id = made
    repo = bundle.parent / "repo"
    approved = repo / "examples" / "demo.yaml.approved"
    kept = approved.read_text()
    approved.write_text("- not a mapping\n")
    try:
        out = tmp_path / "b.json"
        result = run_cli(["evidence", run_id, "--out", str(out), "--state", str(repo / "state")],
                         _env(), cwd=repo)
    finally:
        approved.write_text(kept)
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["approval"] is None
    checked = _verify(out, public)
    assert checked.returncode == 0, checked.stdout
    assert "no approval bundled (the signed lines show a run against the built-in " \
        "simulator, which needs none)" in checked.stdout


def test_a_run_without_a_signed_digest_cannot_be_bundled(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "examples", repo / "examples",
                    ignore=shutil.ignore_patterns(".archiver", "audit", "*.approved"))
    demo_at_test_pace(repo / "examples" / "demo.yaml")
    report = tmp_path / "report.json"
    assert run_cli(["run", "examples/demo.yaml", "--state", str(repo / "state"), "--quiet",
                    "--report", str(report)], _env(), cwd=repo).returncode == 0
    run_id = json.loads(report.read_text())["run_id"]
    result = run_cli(["evidence", run_id, "--out", str(tmp_path / "b.json"),
                      "--state", str(repo / "state")], _env(), cwd=repo)
    assert result.returncode != 0
    assert "has no signed digest" in result.stderr


def test_the_policys_hold_files_travel_in_the_bundle(tmp_path):
    private, public = ed25519_key_pair(tmp_path)
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "examples", repo / "examples",
                    ignore=shutil.ignore_patterns(".archiver", "audit", "*.approved"))
    (repo / "examples" / "holds").mkdir()
    (repo / "examples" / "holds" / "LIT-2026-114.yaml").write_text(
        "case: LIT-2026-114\nplaced_by: legal@example.com\n"
        "campaigns: [3f6c2a10-8d4e-4b7a-9c21-5e0f1a2b3c4d]\n"
    )
    policy = demo_at_test_pace(repo / "examples" / "demo.yaml")
    policy.write_text(policy.read_text() + "\nholds: [holds/LIT-2026-114.yaml]\n")
    report = tmp_path / "report.json"
    result = run_cli(["run", "examples/demo.yaml", "--state", str(repo / "state"), "--quiet",
                      "--report", str(report)], _env(ARCHIVER_SIGNING_KEY=str(private)), cwd=repo)
    assert result.returncode == 0, result.stderr
    run_id = json.loads(report.read_text())["run_id"]
    bundle = tmp_path / "bundle.json"
    made = run_cli(["evidence", run_id, "--out", str(bundle), "--state", str(repo / "state")],
                   _env(), cwd=repo)
    assert made.returncode == 0, made.stderr
    holds = json.loads(bundle.read_text())["holds"]
    assert [h["file"] for h in holds] == ["holds/LIT-2026-114.yaml"]
    checked = _verify(bundle, public)
    assert checked.returncode == 0, checked.stdout
    # Bundled as they are when the bundle is made: shown, never claimed verified.
    assert ("NOTE holds: LIT-2026-114 (holds/LIT-2026-114.yaml, placed by legal@example.com) "
            "(as the bundle was made; not signed)") in checked.stdout


def test_a_bundle_nested_past_the_parsers_depth_is_refused_in_one_line(tmp_path):
    from click.testing import CliRunner
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from archiver.cli import cli

    public = tmp_path / "key.pub.pem"
    public.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ))
    bundle = tmp_path / "evidence.json"
    bundle.write_text("[" * 100_000)
    result = CliRunner().invoke(
        cli, ["evidence", "verify", str(bundle), "--public-key", str(public)],
        catch_exceptions=False,
    )
    assert result.exit_code == 78, result.output
    assert result.output.startswith(f"archiver: error: {bundle} is not an evidence bundle")
    assert len(result.output.splitlines()) == 1


def test_the_bundle_forms_help_and_errors_name_the_form_that_works(made, tmp_path):
    # `evidence RUN_ID --help` said `Usage: archiver evidence create [OPTIONS] RUN_ID`,
    # and its errors `Try 'archiver evidence create --help'`: no such form exists
    # (`create` is read as the run id).
    from click.testing import CliRunner

    from archiver.cli import cli

    shown = CliRunner().invoke(cli, ["evidence", "r1", "--help"], prog_name="archiver")
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[0] == "Usage: archiver evidence RUN_ID [OPTIONS]"
    missing = CliRunner().invoke(cli, ["evidence", "r1"], prog_name="archiver")
    assert missing.exit_code == 2
    assert "Try 'archiver evidence RUN_ID --help' for help." in missing.output
    assert "evidence create" not in shown.output + missing.output
    # The form the usage line shows works as written.
    bundle, _, run_id = made
    out = tmp_path / "b.json"
    repo = bundle.parent / "repo"
    result = run_cli(["evidence", run_id, "--state", str(repo / "state"), "--out", str(out)],
                     _env(), cwd=repo)
    assert result.returncode == 0, result.stderr


# The report against the run's signed audit lines: each field a signed line states is
# checked, and one the lines do not state is shown as not vouched for, never verified.

def _verified_outright(result: subprocess.CompletedProcess[str]) -> bool:
    return result.stdout.rstrip().endswith(": verified")


def test_an_edited_target_is_named_with_both_values(made, tmp_path):
    def change(data):
        data["report"]["target"] = {"backend": "cxone", "host": "api-us-02.nicecxone.com",
                                    "tenant": "11111111-2222-3333-4444-555555555555"}

    result = _verify(_tampered(made, tmp_path, change), made[1])
    assert result.returncode == 1, result.stdout
    out = result.stdout
    assert 'FAIL report: target.host: the report says "api-us-02.nicecxone.com", the signed ' \
        'run_started line (seq' in out
    assert 'says "embedded"' in out
    assert 'FAIL report: target.backend: the report says "cxone"' in out
    assert 'FAIL report: target.tenant: the report says "11111111-' in out
    assert "DOES NOT VERIFY" in out


def test_an_edited_campaign_count_is_named(made, tmp_path):
    def change(data):
        data["report"]["campaigns"][0]["archived"] += 5

    result = _verify(_tampered(made, tmp_path, change), made[1])
    assert result.returncode == 1, result.stdout
    assert "FAIL report: campaigns[].archived: the report's campaigns add up to" in result.stdout


def test_an_edited_campaign_archived_in_this_run_is_named(made, tmp_path):
    bundle, _, _ = made
    campaign = json.loads(bundle.read_text())["report"]["campaigns"][1]

    def change(data):
        data["report"]["campaigns"][1]["archived_in_this_run"] += 7

    result = _verify(_tampered(made, tmp_path, change), made[1])
    assert result.returncode == 1, result.stdout
    assert (f"FAIL report: campaign {campaign['id']} archived_in_this_run: the report says "
            f"{campaign['archived_in_this_run'] + 7}, its signed batch_archived lines add up to "
            f"{campaign['archived_in_this_run']}") in result.stdout


def test_an_edited_archived_in_this_run_is_named(made, tmp_path):
    def change(data):
        data["report"]["archived_in_this_run"] += 100

    result = _verify(_tampered(made, tmp_path, change), made[1])
    assert result.returncode == 1, result.stdout
    assert "FAIL report: archived_in_this_run: the report says" in result.stdout
    assert "the signed batch_archived lines of the run add up to" in result.stdout


def test_an_edited_tool_version_is_named(made, tmp_path):
    def change(data):
        data["report"]["tool_version"] = "9.9.9"

    result = _verify(_tampered(made, tmp_path, change), made[1])
    assert result.returncode == 1, result.stdout
    assert 'FAIL report: tool_version: the report says "9.9.9", the signed run_started line' \
        in result.stdout


def test_an_edited_git_commit_is_named(made, tmp_path):
    def change(data):
        data["report"]["policy"]["git_commit"] = "0123456789abcdef0123456789abcdef01234567"

    result = _verify(_tampered(made, tmp_path, change), made[1])
    assert result.returncode == 1, result.stdout
    assert 'FAIL report: policy.git_commit: the report says "0123456789abcdef' in result.stdout


def test_an_edited_exit_code_is_named(made, tmp_path):
    # The signed run_finished line states how the run ended, exit code included, so an
    # exit code changed in the report is caught even with no failed attempt counted.
    def change(data):
        data["report"]["exit_code"] = 1

    result = _verify(_tampered(made, tmp_path, change), made[1])
    assert result.returncode == 1, result.stdout
    assert "FAIL report: exit_code: the report says 1, the signed run_finished line says 0" \
        in result.stdout
    assert not _verified_outright(result)


def test_an_untouched_bundle_vouches_for_the_exit_code(made):
    result = _verify(*made[:2])
    assert result.returncode == 0, result.stdout
    [agreed] = [line for line in result.stdout.splitlines()
                if line.startswith("OK   report: agrees with the signed lines on:")]
    assert "exit_code" in agreed.split(": ", 2)[2].split(", ")


def test_the_signed_exit_code_wins_over_what_the_counts_suggest():
    from archiver.governance.evidence import _check_report

    # An aborted campaign exits 1 with no failed attempt: the line says so itself.
    counts = {"listed": 2, "archived": 2, "skipped": 0, "quarantined": 0, "failed": 0, "held": 0}
    finished = {"event": "run_finished", "run_id": "r1", "seq": 9, "counts": counts,
                "campaigns": ["c1"], "result": {"status": "failed", "exit_code": 1}}
    report = {"run_id": "r1", "exit_code": 0, "totals": dict(counts),
              "campaigns": [{"id": "c1", **counts}]}
    checks = _check_report(report, [finished])
    assert [c.detail for c in checks if not c.ok] == [
        "exit_code: the report says 0, the signed run_finished line says 1"
    ]
    assert all(c.ok for c in _check_report({**report, "exit_code": 1}, [finished]))


def test_an_exit_code_the_signed_failed_count_contradicts_is_named():
    # A line without `result` (written before lines stated it) still vouches through its
    # failed count.
    from archiver.governance.evidence import _check_report

    counts = {"listed": 2, "archived": 1, "skipped": 0, "quarantined": 0, "failed": 1, "held": 0}
    finished = {"event": "run_finished", "run_id": "r1", "seq": 9, "counts": counts,
                "campaigns": ["c1"]}
    report = {"run_id": "r1", "exit_code": 0, "totals": dict(counts),
              "campaigns": [{"id": "c1", **counts}]}
    checks = _check_report(report, [finished])
    assert [c.detail for c in checks if not c.ok] == [
        "exit_code: the report says 0, the signed run_finished line counts 1 failed "
        "attempt(s), so the run exited 1"
    ]


def _rerun_lines(*, status: bool = True) -> tuple[dict, list[dict]]:
    """A rerun's report and signed lines: one batch of its own (2 archived) and one an
    earlier run left open, reconciled (3 archived by that run's request)."""
    counts = {"listed": 2, "archived": 2, "skipped": 0, "quarantined": 0, "failed": 0,
              "held": 0, "reconciled": 3}
    started = {"event": "run_started", "run_id": "r2", "seq": 1}
    own = {"event": "batch_archived", "run_id": "r2", "seq": 2, "campaign_id": "c1",
           "attempt_ids": ["a-4", "a-5"], "result": {"status": "COMPLETED"}}
    found = {"event": "batch_archived", "run_id": "r2", "seq": 3, "campaign_id": "c1",
             "attempt_ids": ["a-1", "a-2", "a-3"], "result": {"status": "RECONCILED_FROM_LISTING"}}
    if not status:
        del own["result"], found["result"]
    finished = {"event": "run_finished", "run_id": "r2", "seq": 4, "counts": counts,
                "campaigns": ["c1"], "result": {"status": "completed", "exit_code": 0}}
    report = {"run_id": "r2", "exit_code": 0, "totals": dict(counts), "archived_in_this_run": 2,
              "campaigns": [{"id": "c1", **counts, "archived_in_this_run": 2}]}
    return report, [started, own, found, finished]


def test_reconciled_batch_lines_vouch_for_reconciled_and_not_for_archived_in_this_run():
    from archiver.governance.evidence import _check_report

    report, lines = _rerun_lines()
    checks = _check_report(report, lines)
    assert all(c.ok for c in checks), [c.detail for c in checks]
    agreed = checks[0].detail.split(": ", 1)[1].split(", ")
    assert {"archived_in_this_run", "campaigns[].archived_in_this_run", "totals.reconciled",
            "campaigns[].reconciled"} <= set(agreed)
    assert "reconciled" not in checks[1].detail.split("each campaign's ")[1].split(" (")[0]

    # The figures of a report that counted the reconciled batch as its own are named.
    report["archived_in_this_run"] = report["campaigns"][0]["archived_in_this_run"] = 5
    assert [c.detail for c in _check_report(report, lines) if not c.ok] == [
        "archived_in_this_run: the report says 5, the signed batch_archived lines of the run "
        "add up to 2",
        "campaign c1 archived_in_this_run: the report says 5, its signed batch_archived lines "
        "add up to 2",
    ]


def test_batch_lines_without_a_status_vouch_for_the_sum_only():
    from archiver.governance.evidence import _check_report

    report, lines = _rerun_lines(status=False)
    checks = _check_report(report, lines)
    assert all(c.ok for c in checks), [c.detail for c in checks]
    agreed = checks[0].detail.split(": ", 1)[1].split(", ")
    assert "archived_in_this_run + totals.reconciled" in agreed
    assert "archived_in_this_run" not in agreed
    assert "campaigns[].archived_in_this_run" in checks[1].detail
    report["campaigns"][0]["reconciled"] = 4
    assert "campaign c1 archived_in_this_run + reconciled: the report says 6, its signed " \
        "batch_archived lines add up to 5" in [c.detail for c in _check_report(report, lines)]


def test_a_report_from_before_reconciled_counted_every_batch_line_as_its_own():
    from archiver.governance.evidence import _check_report

    report, lines = _rerun_lines()
    for counts in (report["totals"], report["campaigns"][0]):
        counts["listed"] = counts["archived"] = 5
        del counts["reconciled"]
    report["archived_in_this_run"] = report["campaigns"][0]["archived_in_this_run"] = 5
    lines[-1]["counts"] = {k: v for k, v in report["totals"].items()}
    checks = _check_report(report, lines)
    assert all(c.ok for c in checks), [c.detail for c in checks]


def test_an_approval_added_to_an_embedded_run_is_not_verified(made, tmp_path):
    bundle, _, _ = made
    sha = json.loads(bundle.read_text())["policy"]["sha256"]

    def change(data):
        data["approval"] = (f"sha256: {sha}\napproved_by: ceo@example.com\n"
                            "approved_at: '2020-01-01T00:00:00Z'\n")

    result = _verify(_tampered(made, tmp_path, change), made[1])
    assert "OK   approval" not in result.stdout
    assert "NOTE approval: approved by ceo@example.com at 2020-01-01T00:00:00Z (unsigned) is " \
        "not vouched for: the signed lines show a run against the built-in simulator" \
        in result.stdout
    assert not _verified_outright(result)
    assert "what is signed verifies; the 2 NOTE line(s) above are not vouched for" \
        in result.stdout


def test_an_approval_of_another_policy_text_is_named(made, tmp_path):
    def change(data):
        data["approval"] = ("sha256: " + "ab" * 32 + "\napproved_by: ceo@example.com\n"
                            "approved_at: '2020-01-01T00:00:00Z'\n")

    result = _verify(_tampered(made, tmp_path, change), made[1])
    assert result.returncode == 1, result.stdout
    assert "FAIL approval: sha256: the approval approves abababababab, the signed run ran " \
        "the policy text" in result.stdout


def test_an_unsigned_approval_fails_when_allowed_signers_require_a_signature(made, tmp_path):
    bundle, public, _ = made
    signers = tmp_path / "allowed_signers"
    signers.write_text("alice@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDummy\n")
    result = run_cli(["evidence", "verify", str(bundle), "--public-key", str(public)],
                     _env(ARCHIVER_ALLOWED_SIGNERS=str(signers)))
    assert result.returncode == 1, result.stdout
    assert "FAIL approval: approved by alice@example.com at" in result.stdout
    assert "but unsigned, and an allowed-signers file requires a signature" in result.stdout


def test_an_approval_of_a_real_tenant_run_vouches_only_for_what_is_signed():
    from archiver.governance.evidence import _check_approval

    sha = "cd" * 32
    started = {"event": "run_started", "run_id": "r1", "recorded_at": "2026-01-02T00:00:00.5Z",
               "target": {"backend": "cxone", "host": "api-us-02.nicecxone.com", "tenant": "t"}}
    before = f"sha256: {sha}\napproved_by: bob@example.com\napproved_at: '2026-01-01T00:00:00Z'\n"
    found = _check_approval(before, sha, [started], None)
    assert (found.ok, found.vouched) == (True, False)
    assert found.detail == ("approves the policy text that ran; approved by bob@example.com at "
                            "2026-01-01T00:00:00Z is not vouched for (unsigned)")
    after = before.replace("2026-01-01", "2026-02-01")
    assert "written after the run started" in _check_approval(after, sha, [started], None).detail
    # Compared as instants, not as text: 23:00 at UTC-05:00 is 04:00 UTC, after the start.
    offset = before.replace("2026-01-01T00:00:00Z", "2026-01-01T23:00:00-05:00")
    assert "written after the run started" in _check_approval(offset, sha, [started], None).detail
    zoned = before.replace("2026-01-01T00:00:00Z", "2026-01-02T00:30:00+01:00")  # 23:30 UTC
    assert "not vouched for (unsigned)" in _check_approval(zoned, sha, [started], None).detail
    vague = before.replace("2026-01-01T00:00:00Z", "yesterday")
    assert "its time is not an ISO 8601 time" in _check_approval(vague, sha, [started], None).detail
    missing = _check_approval(None, sha, [started], None)
    assert (missing.ok, missing.vouched) == (True, False)
    assert "the run against api-us-02.nicecxone.com needed one" in missing.detail


def test_a_bundled_hold_file_is_read_with_the_policys_yaml_rules():
    from archiver.governance.evidence import _check_holds

    check = _check_holds([{"file": "holds/LIT-1.yaml", "text": (
        "case: LIT-1\nplaced_by: a@b\nattempts: [att-0]\nattempts: [att-1]\n")}])
    assert not check.ok
    assert check.detail.startswith("hold file holds/LIT-1.yaml:4:1: P005 duplicate key")


@pytest.mark.parametrize(("where", "value", "said"), [
    (("holds",), 7, "`holds` is a number, not an array"),
    (("report",), [1], "`report` is an array, not an object"),
    (("report", "campaigns"), 7, "`report.campaigns` is a number, not an array"),
    (("report", "policy"), "x", "`report.policy` is a string, not an object"),
    (("policy",), 7, "`policy` is a number, not an object"),
    (("audit",), "x", "`audit` is a string, not an array"),
    (("audit", 0), None, "`audit[0]` is null, not an object"),
    (("audit", 0, "lines"), 7, "`audit[0].lines` is a number, not an array"),
    (("audit", 0, "lines", 0), {"a": 1}, "`audit[0].lines[0]` is an object, not a string"),
])
def test_a_bundle_part_of_the_wrong_type_fails_in_one_line(made, tmp_path, where, value, said):
    # A bundle is a stranger's file: a part of the wrong type is named, not a traceback.
    def change(data: dict) -> None:
        node = data
        for key in where[:-1]:
            node = node[key]
        node[where[-1]] = value

    result = _verify(_tampered(made, tmp_path, change), made[1])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"FAIL bundle: not an evidence bundle's shape: {said}" in result.stdout
    assert result.stdout.rstrip().endswith("DOES NOT VERIFY")


def test_a_bundle_written_to_a_named_pipe_reaches_its_reader_and_the_pipe_stays(made, tmp_path):
    bundle, _, run_id = made
    state = bundle.parent / "repo" / "state"
    fifo = tmp_path / "bundle.pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def read() -> None:
        with fifo.open("rb") as pipe:
            got.append(pipe.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    result = run_cli(["evidence", run_id, "--out", str(fifo), "--state", str(state)], _env())
    reader.join(timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(got[0])["run_id"] == run_id
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the pipe was replaced by a regular file"
    assert sorted(os.listdir(tmp_path)) == ["bundle.pipe"]

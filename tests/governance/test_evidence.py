"""`archiver evidence`: one run's bundle, checked offline with only the public key;
each kind of tampering is named by the part it breaks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from archiver.audit.chain import line_hash
from tests.support import REPO, demo_at_test_pace, run_cli


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[Path, Path, str]:
    """Two signed demo runs; the bundle of the second, and the public key."""
    root = tmp_path_factory.mktemp("evidence")
    private, public = root / "signing.pem", root / "signing.pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(private)],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)],
                   check=True, capture_output=True)
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
    assert "OK   approval: approved by alice@example.com" in out
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
    private = tmp_path / "signing.pem"
    public = tmp_path / "signing.pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(private)],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)],
                   check=True, capture_output=True)
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
    assert "OK   holds: LIT-2026-114 (holds/LIT-2026-114.yaml, placed by legal@example.com)" \
        in checked.stdout


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

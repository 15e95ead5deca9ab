"""The schemas archiver publishes: stable ids, printed by `archiver schema --all`, equal to
the copies in schemas/, and checked by a tool we did not write (check-jsonschema)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from archiver.cli import cli
from archiver.policy.files import policy_files, policy_test_files
from tests.support import REPO

SCHEMAS = REPO / "schemas"
IDS = {
    "policy": "urn:archiver:schema:policy:v1",
    "policy-test": "urn:archiver:schema:policy-test:v1",
    "run-report": "urn:archiver:schema:run-report:v1",
}
PACKAGED = {
    "policy": REPO / "archiver" / "policy" / "policy.schema.json",
    "policy-test": REPO / "archiver" / "review" / "policy-test.schema.json",
    "run-report": REPO / "archiver" / "report" / "run-report.schema.json",
}


def _check_jsonschema(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def test_schema_all_prints_every_schema_keyed_by_name() -> None:
    result = CliRunner().invoke(cli, ["schema", "--all"])

    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert list(printed) == ["policy", "policy-test", "run-report"]
    for name, schema in printed.items():
        assert schema["$id"] == IDS[name]
        assert schema == json.loads((SCHEMAS / f"{name}.schema.json").read_text()), name


def test_the_schemas_folder_is_the_packaged_schemas_byte_for_byte() -> None:
    published = sorted(p.name for p in SCHEMAS.glob("*.schema.json"))
    assert published == sorted(f"{name}.schema.json" for name in PACKAGED)
    for name, packaged in PACKAGED.items():
        shipped = SCHEMAS / f"{name}.schema.json"
        assert shipped.read_bytes() == packaged.read_bytes(), (
            f"{shipped.relative_to(REPO)} and {packaged.relative_to(REPO)} differ: a schema "
            "change goes into both (archiver schema --all prints the packaged copy)")


def test_plain_schema_still_prints_the_policy_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"])

    assert result.exit_code == 0
    assert result.stdout_bytes == (SCHEMAS / "policy.schema.json").read_bytes()


def test_every_published_schema_passes_the_metaschema_check() -> None:
    files = sorted(str(p) for p in SCHEMAS.glob("*.schema.json"))
    assert len(files) == 3

    result = _check_jsonschema("--check-metaschema", *files)

    assert result.returncode == 0, result.stdout + result.stderr


def test_shipped_policies_and_tests_follow_the_published_schemas() -> None:
    folders = [REPO / "policies", REPO / "examples"]
    policies = [str(p) for folder in folders for p in policy_files(folder)]
    tests = [str(p) for folder in folders for p in policy_test_files(folder)]
    assert len(policies) >= 3 and len(tests) >= 3

    for schema, files in (("policy", policies), ("policy-test", tests)):
        result = _check_jsonschema("--schemafile", str(SCHEMAS / f"{schema}.schema.json"), *files)
        assert result.returncode == 0, result.stdout + result.stderr


def test_check_jsonschema_catches_a_policy_the_schema_refuses(tmp_path: Path) -> None:
    # The check above would pass vacuously if the tool never read the files.
    text = (REPO / "examples" / "demo.yaml").read_text()
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("  base_url: embedded", "  timeout: 3"))

    result = _check_jsonschema("--schemafile", str(SCHEMAS / "policy.schema.json"), str(broken))

    assert result.returncode == 1
    assert "base_url" in result.stdout + result.stderr

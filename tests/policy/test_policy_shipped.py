"""The policies and the demo we ship are valid, and the schema we ship is the one we print."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver.cli import cli
from archiver.policy import SCHEMA, load_policy, policy_files
from archiver.policy.files import is_policy_file

REPO = Path(__file__).resolve().parents[2]
SHIPPED = [*policy_files(REPO / "policies"), REPO / "examples" / "demo.yaml"]


def test_there_are_shipped_policies() -> None:
    names = {p.name for p in SHIPPED}
    assert {"survey-retention.yaml", "sales-callbacks.yaml", "demo.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_policy_validates(path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", str(path)])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 policy valid"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_policy_loads_with_its_templates_resolved_beside_it(path: Path) -> None:
    policy = load_policy(path)

    assert policy.path == path.resolve()
    # A stage's settings are its options model: a sink's template is written there.
    templates = [sink.options.template for sink in policy.sinks
                 if getattr(sink.options, "template", None) is not None]
    assert templates, "every shipped policy renders its sinks through templates"
    for template in templates:
        resolved = policy.resolve(template)
        assert resolved.is_file(), template
        assert resolved.is_relative_to(path.resolve().parent), template


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_policy_declares_the_schema_for_editors(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/policy.schema.json"
    assert (path.parent / "../schemas/policy.schema.json").is_file()


def test_validating_the_folders_counts_every_policy() -> None:
    # The example plugin's policy (examples/plugins/) needs the plugin installed; it is
    # validated where it is (tests/plugins), and refused here, where it is not.
    examples = [p for p in sorted((REPO / "examples").glob("*.yaml")) if is_policy_file(p)]
    result = CliRunner().invoke(cli, ["validate", str(REPO / "policies"), *map(str, examples)])

    assert result.exit_code == 0, result.output
    count = len(policy_files(REPO / "policies")) + len(examples)
    assert count >= 4 and result.output.strip() == f"{count} policies valid"
    plugin = REPO / "examples" / "plugins" / "example" / "policy.yaml"
    assert plugin in policy_files(REPO / "examples")
    refused = CliRunner().invoke(cli, ["validate", str(plugin)])
    assert refused.exit_code == 78 and "no installed plugin provides it" in refused.output


def test_demo_runs_against_the_simulator() -> None:
    demo = load_policy(REPO / "examples" / "demo.yaml")

    assert demo.connection.base_url == "embedded"
    assert len(demo.campaigns) == 3
    assert "pause_and_resume" in {c.on_active for c in demo.campaigns}
    assert {s.type for s in demo.sinks} == {"webhook", "audit_log"}


def test_schema_command_prints_the_shipped_schema_byte_for_byte() -> None:
    result = CliRunner().invoke(cli, ["schema"])

    assert result.exit_code == 0
    shipped = (REPO / "schemas" / "policy.schema.json").read_bytes()
    packaged = (REPO / "archiver" / "policy" / "policy.schema.json").read_bytes()
    assert result.stdout_bytes == shipped == packaged
    assert json.loads(shipped) == SCHEMA


def test_schema_file_is_pretty_printed_canonically() -> None:
    text = (REPO / "schemas" / "policy.schema.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"

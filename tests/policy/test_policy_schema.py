"""The schema explains every key to editors, and agrees with the typed models."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from archiver.policy import SCHEMA, check_file
from archiver.policy import model as m
from archiver.policy._pattern import Validator, ecma_to_python
from archiver.stages import registry
from archiver.stages.transforms.retention import RetentionRule

from ._texts import VALID, line_of
from .conftest import Writer

# Which model each object schema of the policy builds.
MODELS: dict[str, type[BaseModel]] = {
    "#": m.Policy,
    "connection": m.Connection,
    "campaign": m.Campaign,
    "source": m.Source,
    "batch": m.Batch,
    "retry": m.Retry,
    "retention_rule": RetentionRule,
    # Each built-in stage type's options model, by the definition its descriptor names.
    **{
        stage.schema_def: stage.options
        for stage in registry.all_types()
        if stage.schema_def is not None
    },
}
DISPATCHERS = {"filter", "transform", "sink"}  # pick a stage kind by `type` with if/then


def _object_schemas() -> dict[str, dict[str, Any]]:
    return {"#": SCHEMA, **SCHEMA["$defs"]}


def _properties(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property schema anywhere in the schema, with a readable location."""
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            yield f"{where}/{name}", prop
        for key, value in node.items():
            yield from _properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _properties(value, f"{where}/{i}")


def test_schema_is_a_valid_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_key_has_a_description_and_a_default() -> None:
    found = list(_properties(SCHEMA))
    assert len(found) > 40
    for where, prop in found:
        if "/if/" in where:  # the dispatch conditions are not keys a user writes
            continue
        assert prop.get("description"), f"{where} has no description"
        assert "default" in prop, f"{where} has no default"


def test_every_object_refuses_unknown_keys() -> None:
    for name, schema in _object_schemas().items():
        if name in DISPATCHERS:
            assert all("then" in branch for branch in schema["allOf"])
            continue
        assert schema.get("additionalProperties") is False, name


def test_every_model_field_is_in_the_schema_and_back() -> None:
    for name, model in MODELS.items():
        schema_keys = set(_object_schemas()[name]["properties"])
        model_keys = {k for k, f in model.model_fields.items() if not f.exclude}
        assert schema_keys == model_keys, name


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_defaults_equal_schema_defaults(name: str) -> None:
    model = MODELS[name]
    properties = _object_schemas()[name]["properties"]
    required = set(_object_schemas()[name].get("required", []))
    for field_name, field in model.model_fields.items():
        if field.exclude:
            continue
        # Required in one, required in the other: a key the schema requires never gets a
        # silent default in the model (a policy built in code must say it too). A `const`
        # (version, a stage's type) has only one value to default to.
        if "const" not in properties[field_name]:
            assert field.is_required() == (field_name in required), f"{name}.{field_name}"
        if field.is_required():
            continue
        default = field.get_default(call_default_factory=True)
        documented = properties[field_name]["default"]
        if isinstance(default, BaseModel):
            assert type(default).model_validate(documented) == default, f"{name}.{field_name}"
        elif isinstance(default, tuple):
            assert list(default) == documented, f"{name}.{field_name}"
        else:
            assert default == documented, f"{name}.{field_name}"
            assert type(default) is type(documented) or isinstance(default, float), name


def test_schema_defaults_are_accepted_by_the_schema_where_they_are_complete() -> None:
    validator = Draft202012Validator(SCHEMA)
    for name in ("connection", "source", "batch", "retry"):
        block = {k: v["default"] for k, v in SCHEMA["$defs"][name]["properties"].items()}
        doc = {"version": 1, "name": "x", "connection": {"base_url": "embedded"},
               "campaigns": [{"id": "c1"}], name: block}
        assert not list(validator.iter_errors(doc)), name


def test_builtin_stage_types_match_the_models() -> None:
    consts = {
        kind: {b["if"]["properties"]["type"].get("const") for b in SCHEMA["$defs"][kind]["allOf"]}
        - {None}
        for kind in DISPATCHERS
    }
    assert consts == {
        "filter": {"outcome", "anonymized"},
        "transform": {"retention"},
        "sink": {"webhook", "audit_log", "file"},
    }
    # ... and they are exactly the stage types archiver's own entry points register.
    assert consts == {kind: set(registry.builtin_types(kind)) for kind in DISPATCHERS}
    assert len([n for n in MODELS if n.endswith(("_filter", "_transform", "_sink"))]) == 6


def test_connection_is_required_and_base_url_too_unless_the_api_is_cxone() -> None:
    assert "connection" in SCHEMA["required"]
    [branch] = SCHEMA["$defs"]["connection"]["allOf"]
    assert branch["if"]["properties"]["api"] == {"const": "cxone"}
    assert branch["else"] == {"required": ["base_url"]}
    assert m.Policy.model_fields["connection"].is_required()
    validator = Draft202012Validator(SCHEMA)
    doc = {"version": 1, "name": "x", "connection": {}, "campaigns": [{"id": "c1"}]}
    assert [e.message for e in validator.iter_errors(doc)] == ["'base_url' is a required property"]
    doc["connection"] = {"api": "cxone", "tenant_id": "t-1"}
    assert not list(validator.iter_errors(doc))


def test_the_policy_schema_has_a_stable_id() -> None:
    assert SCHEMA["$id"] == "urn:archiver:schema:policy:v1"


def test_every_diagnostic_code_is_documented_in_the_package() -> None:
    import re

    import archiver.policy
    from archiver.policy import _codes

    defined = {v for k, v in vars(_codes).items() if k.isupper() and isinstance(v, str)}
    documented = set(re.findall(r"^([PSVT]\d{3})  ", archiver.policy.__doc__ or "", re.M))
    assert defined == documented


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (("name: broken-example", 'name: "broken-example\\n"'), "name:"),
        (("  - id: 7b1e9d42-5a3c-4f60-8e17-2c9d0b4a6f81",
          '  - id: "7b1e9d42-5a3c-4f60-8e17-2c9d0b4a6f81\\n"'), "7b1e9d42"),
    ],
    ids=["policy name", "campaign id"],
)
def test_a_value_ending_in_a_newline_does_not_match_a_pattern_ending_in_dollar(
    write: Writer, edit: tuple[str, str], needle: str
) -> None:
    # JSON Schema patterns are ECMA-262: `$` ends the text. Python's `$` also matches
    # before a final newline, so "name\n" passed, and split every log line it was in.
    text = VALID.replace(*edit)
    found = check_file(write(text))
    assert [(d.line, d.code) for d in found] == [(line_of(text, needle), "S006")]
    assert "has the wrong form" in found[0].message


def test_the_validator_agrees_with_check_jsonschema_on_a_trailing_newline(tmp_path: Path) -> None:
    # check-jsonschema reads patterns with an ECMA-262 engine (regress): the reference.
    doc = yaml.safe_load(VALID.replace("name: broken-example", 'name: "broken-example\\n"'))
    instance = tmp_path / "policy.json"
    instance.write_text(json.dumps(doc))
    schema = tmp_path / "policy.schema.json"
    schema.write_text(json.dumps(SCHEMA))
    checked = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(schema), str(instance)],
        capture_output=True, text=True, timeout=120,
    )
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "does not match" in checked.stdout + checked.stderr
    assert [e.validator for e in Validator(SCHEMA).iter_errors(doc)] == ["pattern"]


@pytest.mark.parametrize(
    ("pattern", "python"),
    [
        ("^a$", r"^a\Z"),
        (r"^a\$$", r"^a\$\Z"),  # an escaped dollar is a character
        ("^[$a]$", r"^[$a]\Z"),  # so is one in a class
        (r"^[\]$]x$", r"^[\]$]x\Z"),  # an escaped ] does not end the class
        ("(a|b)$", r"(a|b)\Z"),
        # ECMA's empty classes: [] matches nothing, [^] any character; Python would read
        # a class holding "]".
        ("^[]$]", r"^(?!)\Z]"),
        ("^[^]$", r"^[\s\S]\Z"),
        ("[^]]", r"[\s\S]]"),
    ],
)
def test_only_dollar_anchors_become_ends_of_text(pattern: str, python: str) -> None:
    assert ecma_to_python(pattern) == python
    re.compile(python)

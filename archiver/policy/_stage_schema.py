"""The policy schema with every installed stage type in it.

The shipped schema (``policy.schema.json``) describes archiver's own stage types in
hand-written ``$defs``. Each stage list dispatches on ``type`` (``if``/``then``), so
an error names the one stage type that was meant; here those branches are made from
the registry: a built-in type's branch points at its hand-written definition, an
installed plugin's at the JSON Schema of its options model, so ``validate`` and
editors (``archiver schema``) check a plugin's options at their line like any other
key. With no plugin installed the result equals the shipped file.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

from archiver.stages import registry
from archiver.stages.descriptor import KINDS, StageKind, StageType

_SHIPPED: dict[str, Any] = json.loads(
    resources.files(__package__).joinpath("policy.schema.json").read_text(encoding="utf-8")
)


def _branch(name: str, ref: str) -> dict[str, Any]:
    return {
        "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
        "then": {"$ref": f"#/$defs/{ref}"},
    }


def _fallback(names: list[str]) -> dict[str, Any]:
    return {
        "if": {"properties": {"type": {"type": "string", "not": {"enum": names}}},
               "required": ["type"]},
        "then": {"$ref": "#/$defs/plugin_stage"},
    }


def plugin_def(stage: StageType, defs: dict[str, Any]) -> str:
    """Add a plugin stage's definition (and its options model's) to ``defs``; its name."""
    name = f"{stage.kind}:{stage.name}"
    options = stage.options.model_json_schema(ref_template=f"#/$defs/{name}:{{model}}")
    for sub, body in options.pop("$defs", {}).items():
        defs[f"{name}:{sub}"] = body
    defs[f"{name}:options"] = options
    item: dict[str, Any] = {
        "type": "object",
        "description": stage.summary or f"The {stage.kind} `{stage.name}` (a plugin).",
        "additionalProperties": False,
        "required": ["type", "options"] if options.get("required") else ["type"],
        "properties": {
            "type": {"description": f"{stage.kind.capitalize()} kind `{stage.name}`.",
                     "const": stage.name},
            "options": {"$ref": f"#/$defs/{name}:options"},
        },
    }
    defs[name] = item
    return name


def _branches(kind: StageKind, defs: dict[str, Any]) -> list[dict[str, Any]]:
    types = registry.registry().types[kind]
    builtin = registry.builtin_types(kind)
    shipped = [b for b in _SHIPPED["$defs"][kind]["allOf"]
               if "const" in b["if"]["properties"]["type"]]
    out = []
    for branch in shipped:  # the shipped order first
        name = branch["if"]["properties"]["type"]["const"]
        if name in builtin:
            out.append(branch)
    for name in sorted(set(builtin) - {b["if"]["properties"]["type"]["const"] for b in out}):
        ref = types[name].schema_def or plugin_def(types[name], defs)
        out.append(_branch(name, ref))
    for name in sorted(set(types) - builtin):
        out.append(_branch(name, plugin_def(types[name], defs)))
    known = [b["if"]["properties"]["type"]["const"] for b in out]
    out.append(_fallback(known))
    return out


def policy_schema() -> dict[str, Any]:
    """The policy schema with every installed stage type."""
    schema = copy.deepcopy(_SHIPPED)
    defs: dict[str, Any] = schema["$defs"]
    for kind in KINDS:
        defs[kind]["allOf"] = _branches(kind, defs)
    return schema


def schema_text() -> str:
    """The schema as ``archiver schema`` prints it: the shipped file, byte for byte, when
    no plugin is installed; else the merged schema."""
    merged = policy_schema()
    if merged == _SHIPPED:
        return resources.files(__package__).joinpath("policy.schema.json").read_text("utf-8")
    return json.dumps(merged, indent=2, ensure_ascii=False) + "\n"

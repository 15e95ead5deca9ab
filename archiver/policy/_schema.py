"""Step 2: the JSON Schema, with its errors turned into diagnostics a person can act on.

jsonschema reports every error with the path of the offending value; positions map
that path to a line. Unknown keys point at the key itself with the nearest known key
suggested, and stage lists dispatch on ``type`` with ``if``/``then`` so an error
names the one stage kind that was meant instead of every kind that did not match.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from archiver.errors import Diagnostic
from archiver.policy import _codes as codes
from archiver.policy._document import Document, JsonPath, dotted
from archiver.policy._pattern import Validator
from archiver.policy._schema_messages import (
    out_of_range,
    required_hint,
    show,
    type_hint,
    wrong_type,
)
from archiver.policy._stage_schema import policy_schema
from archiver.stages import registry
from archiver.stages.descriptor import StageKind

# The schema as shipped (schemas/policy.schema.json): archiver's own stage types only.
SCHEMA: dict[str, Any] = json.loads(
    resources.files(__package__).joinpath("policy.schema.json").read_text(encoding="utf-8")
)

# Policy list -> stage kind, as the registry names kinds.
STAGE_LISTS: dict[str, StageKind] = {"filters": "filter", "transforms": "transform", "sinks": "sink"}
_PLUGIN_KEYS = frozenset(SCHEMA["$defs"]["plugin_stage"]["properties"])


def builtin_types(kind: StageKind) -> list[str]:
    """archiver's own stage types of ``kind``."""
    return sorted(registry.builtin_types(kind))


def _validator() -> Draft202012Validator:
    return _validator_for(registry.registry())


@cache
def _validator_for(types: registry.Registry) -> Draft202012Validator:
    # One per set of installed stage types (a registry is compared by identity).
    return Validator(policy_schema())


def check(data: Any, doc: Document) -> list[Diagnostic]:
    """Every schema error of ``data``, in the order of the file."""
    muted, found = _misspelt_stage_types(data, doc)
    errors = [e for e in _validator().iter_errors(data)
              if not _under(tuple(e.absolute_path), muted)]
    suggested = _suggested_keys(errors)
    for error in errors:
        found.extend(_describe(error, doc, suggested))
    unique = {(d.line, d.col, d.code, d.message): d for d in found}
    return sorted(unique.values(), key=lambda d: (d.line, d.col))


def _under(path: JsonPath, prefixes: Iterable[JsonPath]) -> bool:
    return any(path[: len(p)] == p for p in prefixes)


def _misspelt_stage_types(data: Any, doc: Document) -> tuple[list[JsonPath], list[Diagnostic]]:
    """Stage items whose ``type`` is a near miss of a built-in kind.

    Such an item would otherwise be read as a plugin stage and drown in unknown-key
    errors. An item shaped like a plugin (only ``type`` and ``options``) is left alone,
    since a plugin may well be named close to a built-in.
    """
    muted: list[JsonPath] = []
    found: list[Diagnostic] = []
    if not isinstance(data, dict):
        return muted, found
    for list_key, kind in STAGE_LISTS.items():
        items = data.get(list_key)
        if not isinstance(items, list):
            continue
        known = builtin_types(kind)
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("type"), str):
                continue
            name = item["type"]
            if name in known or set(item) <= _PLUGIN_KEYS or name in registry.known_types(kind):
                continue
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            if close:
                muted.append((list_key, i))
                found.append(doc.at_value((list_key, i, "type"), codes.NOT_ALLOWED,
                                          f"unknown {kind} type `{name}`; did you mean `{close[0]}`?"))
    return muted, found


def _suggested_keys(errors: list[ValidationError]) -> set[tuple[JsonPath, str]]:
    """(object path, key) pairs an unknown key's suggestion names.

    A misspelt required key is reported once, as unknown with its suggestion, not also
    as missing.
    """
    out = set()
    for error in errors:
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            path = tuple(error.absolute_path)
            for _key, suggestion in _unknown_keys(error):
                if suggestion:
                    out.add((path, suggestion))
    return out


def _unknown_keys(error: ValidationError) -> Iterator[tuple[str, str | None]]:
    schema: Any = error.schema
    instance: Any = error.instance
    known = list(schema.get("properties", {}))
    for key in instance:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            yield str(key), close[0] if close else None


def _describe(
    error: ValidationError, doc: Document, suggested: set[tuple[JsonPath, str]]
) -> list[Diagnostic]:
    path: JsonPath = tuple(error.absolute_path)
    name = dotted(path)
    value: Any = error.instance
    rule: Any = error.validator_value
    kind = str(error.validator)
    schema: Any = error.schema

    if kind == "additionalProperties":
        plugin = set(schema.get("properties", {})) == _PLUGIN_KEYS
        out = []
        for key, suggestion in _unknown_keys(error):
            if suggestion:
                message = f"unknown key `{key}`; did you mean `{suggestion}`?"
            elif plugin:
                message = f"unknown key `{key}`; a plugin stage takes its settings under `options`"
            else:
                known = ", ".join(schema.get("properties", {}))
                message = f"unknown key `{key}`; expected one of: {known}"
            out.append(doc.at_key((*path, key), codes.UNKNOWN_KEY, message))
        return out
    if kind == "required":
        out = []
        for key in rule:
            if key in value or (path, key) in suggested:
                continue
            where = f"`{name}` is missing" if path else "missing"
            hint = type_hint(schema) if key == "type" else required_hint(path, key)
            out.append(doc.at_key(path, codes.MISSING_KEY, f"{where} required key `{key}`{hint}"))
        return out
    if kind == "type":
        return [doc.at_value(path, codes.WRONG_TYPE, wrong_type(name, value, rule))]
    if kind == "enum":
        choices = ", ".join(str(c) for c in rule)
        close = difflib.get_close_matches(str(value), [str(c) for c in rule], n=1, cutoff=0.6)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        return [doc.at_value(path, codes.NOT_ALLOWED,
                             f"`{name}` is `{show(value)}`; expected one of: {choices}{hint}")]
    if kind == "const":
        # `version: "1"`: the same characters as the number, so the message says which is which.
        what = (f"the text `{show(value)}` (write it without quotes)"
                if isinstance(value, str) and value == json.dumps(rule) else f"`{show(value)}`")
        return [doc.at_value(path, codes.NOT_ALLOWED,
                             f"`{name}` must be {json.dumps(rule)}, not {what}")]
    if kind == "uniqueItems":
        return _duplicates(path, value, doc)
    if kind == "pattern":
        return [doc.at_value(path, codes.BAD_FORMAT,
                             f"`{name}` `{show(value)}` has the wrong form; it must match `{rule}`")]
    bounds = out_of_range(kind, name, value, rule)
    if bounds is not None:
        return [doc.at_value(path, codes.OUT_OF_RANGE, bounds)]
    return [doc.at_value(path, codes.SCHEMA_OTHER, f"`{name or 'policy'}`: {error.message}")]


def _duplicates(path: JsonPath, items: list[Any], doc: Document) -> list[Diagnostic]:
    seen: list[Any] = []
    out = []
    for i, item in enumerate(items):
        if item in seen:
            out.append(doc.at_value((*path, i), codes.DUPLICATE_ITEM,
                                    f"`{dotted(path)}` lists `{show(item)}` more than once"))
        else:
            seen.append(item)
    return out

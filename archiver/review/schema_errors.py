"""A JSON Schema error of a review file as a diagnostic pointing at the line at fault."""

from __future__ import annotations

from typing import Any

from jsonschema import ValidationError

from archiver.errors import Diagnostic
from archiver.policy._document import JsonPath, Positions, dotted

_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "text", "integer": "a whole number"}


def relevant(errors: list[ValidationError]) -> list[ValidationError]:
    """Without errors of ``if``/``then`` branches on objects whose discriminating value is
    itself wrong: once ``decision`` is misspelt, "reason is required" only misleads."""
    wrong: set[JsonPath] = {
        tuple(e.absolute_path)[:-1] for e in errors if e.validator in ("enum", "const")
    }

    def inside_wrong(e: ValidationError) -> bool:
        path = tuple(e.absolute_path)
        return any(path[: len(w)] == w for w in wrong)

    return [e for e in errors if not ("allOf" in e.schema_path and inside_wrong(e))]


def describe(error: ValidationError, file: str, positions: Positions, code: str) -> Diagnostic:
    path: JsonPath = tuple(error.absolute_path)
    spot = positions.value(path)
    where = dotted(path) or "the file"
    kind = error.validator
    rule: Any = error.validator_value
    message = f"{where}: {error.message}"
    if kind == "required" and isinstance(error.instance, dict):
        missing = [k for k in rule if k not in error.instance]
        message = f"{where}: missing `{'`, `'.join(missing)}`"
    elif kind == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(error.schema.get("properties", {}))  # type: ignore[union-attr]
        unknown = [k for k in error.instance if k not in known]
        if unknown:
            spot = positions.key((*path, unknown[0]))
        message = (f"{where}: unknown key `{'`, `'.join(map(str, unknown))}` "
                   f"(allowed: {', '.join(known)})")
    elif kind == "type":
        message = f"{where}: must be {_TYPE_NAMES.get(str(rule), str(rule))}"
    elif kind in ("enum", "const"):
        allowed = rule if kind == "enum" else [rule]
        message = f"{where}: must be one of {', '.join(map(str, allowed))}, not {error.instance!r}"
    elif kind == "minItems" and path == ("cases",):
        message = "cases: a test file needs at least one case"
    elif kind == "not" and path and path[-1] != "expect":
        spot = positions.key(path)
        message = f"{where}: only allowed with decision: archive"
    elif kind == "not":
        spot = positions.key((*path, "reason"))
        message = f"{where}.reason: an archived attempt has no reason; expect retention_days"
    return Diagnostic(file, spot.line, spot.col, code, message)

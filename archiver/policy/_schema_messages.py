"""Schema errors in words: what was written, what the schema wanted, and how to fix it."""

from __future__ import annotations

import json
from typing import Any


def out_of_range(kind: str, name: str, value: Any, rule: Any) -> str | None:
    """The message for a bound ``value`` breaks; None when ``kind`` is not a bound keyword."""
    if kind == "minimum":
        return f"`{name}` is {show(value)}; the minimum is {rule}"
    if kind == "maximum":
        return f"`{name}` is {show(value)}; the maximum is {rule}"
    if kind == "exclusiveMinimum":
        return f"`{name}` is {show(value)}; it must be greater than {rule}"
    if kind == "exclusiveMaximum":
        return f"`{name}` is {show(value)}; it must be less than {rule}"
    if kind == "minItems":
        return f"`{name}` needs at least {rule} item{'s' if rule != 1 else ''}"
    if kind == "maxItems":
        return f"`{name}` has {len(value)} items; at most {rule} are allowed"
    if kind == "minLength":
        return f"`{name}` must not be empty" if rule == 1 else (
            f"`{name}` must be at least {rule} characters long")
    if kind == "maxLength":
        return f"`{name}` is longer than {rule} characters"
    return None


_TYPE_NAMES = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping of keys",
    "array": "a list",
    "null": "null",
}


def wrong_type(name: str, value: Any, expected: str | list[str]) -> str:
    """The message for a value of the wrong JSON type, with the likely fix when there is one."""
    wanted = [expected] if isinstance(expected, str) else expected
    want = " or ".join(_TYPE_NAMES[w] for w in wanted)
    subject = f"`{name}`" if name else "a policy"
    message = f"{subject} must be {want}, not {kind_of(value)}"
    if "string" in wanted and isinstance(value, bool | int | float):
        message += "; quote it if it is meant as text"
    elif "boolean" in wanted and isinstance(value, str) and value.lower() in {"yes", "no", "on", "off"}:
        message += "; write true or false"
    return message


def kind_of(value: Any) -> str:
    """What a value is, in the words a YAML author would use."""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"`{show(value)}`"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"text `{show(value)}`"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def show(value: Any) -> str:
    """A value as quoted in a message, cut short so one line stays one line."""
    if isinstance(value, str):
        return value if len(value) <= 60 else value[:57] + "..."
    return json.dumps(value)


def type_hint(schema: Any) -> str:
    """For a stage missing its ``type``: the built-in kinds to choose from."""
    examples = schema.get("properties", {}).get("type", {}).get("examples")
    return f" (built in: {', '.join(examples)}, or a plugin's name)" if examples else ""


_API_CHOICE = ("`base_url: embedded` for the built-in simulator, or the tenant's https URL "
               "(like https://api-us-02.nicecxone.com)")
# Required keys whose absence needs more than their name to fix, by (object path, key).
_REQUIRED_HINTS: dict[tuple[tuple[str | int, ...], str], str] = {
    ((), "connection"): f"; say which API the policy runs against: `connection:` with {_API_CHOICE}",
    (("connection",), "base_url"): f"; write {_API_CHOICE}",
}


def required_hint(path: tuple[str | int, ...], key: str) -> str:
    """What to write for a missing required key, when its name alone does not say."""
    return _REQUIRED_HINTS.get((path, key), "")

"""JSON Schema's ``pattern`` as the specification reads it (ECMA-262 regular
expressions), where Python's ``re`` reads one construct differently: ``$`` ends the
text only, while in Python it also matches before a final newline. So
``^[A-Za-z0-9._-]*$`` took ``"demo\\n"``, a name that split every log line written
with it, which check-jsonschema (ECMA semantics) refuses. Patterns are otherwise
passed to ``re`` as jsonschema does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

# ECMA's empty classes, which Python reads as the start of a class holding "]".
_EMPTY_CLASSES = {"[]": "(?!)", "[^]": r"[\s\S]"}


def ecma_to_python(pattern: str) -> str:
    """``pattern`` with each ``$`` anchor (not escaped, not inside ``[...]``) made
    ``\\Z``, the end of the text, and ECMA's empty classes ``[]`` (matches nothing)
    and ``[^]`` (any character) written as Python reads them."""
    out: list[str] = []
    in_class = escaped = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        i += 1
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            empty = next((c for c in _EMPTY_CLASSES if pattern.startswith(c, i - 1)), None)
            if empty is not None:
                out.append(_EMPTY_CLASSES[empty])
                i += len(empty) - 1
                continue
            in_class = True
        elif char == "$":
            out.append(r"\Z")
            continue
        out.append(char)
    return "".join(out)


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(ecma_to_python(pattern))


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


Validator: type[Draft202012Validator] = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _pattern}
)

"""JSON from strangers (a server's answer, a file someone may have edited): parsed or
refused with ValueError, never a RecursionError from nesting past the parser's depth."""

from __future__ import annotations

import json
from typing import Any


def loads(text: str | bytes) -> Any:
    """``json.loads``, with nesting too deep to parse a ValueError like any bad JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def type_name(value: Any) -> str:
    """What a parsed JSON value is, in JSON Schema's words (``object``, ``array``,
    ``string``, ``integer``, ``number``, ``boolean``, ``null``), never a Python type's name.
    bool before int: JSON true is not the integer 1."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"

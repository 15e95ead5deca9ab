"""JSON from strangers (a server's answer, a file someone may have edited): parsed or
refused with ValueError, never a RecursionError from nesting past the parser's depth."""

from __future__ import annotations

import json
from typing import Any


class DuplicateKey(ValueError):
    """An object names a key twice (``loads(..., unique_keys=True)``)."""


def loads(text: str | bytes, *, unique_keys: bool = False) -> Any:
    """``json.loads``, with nesting too deep to parse a ValueError like any bad JSON.

    ``unique_keys``: an object that names a key twice is a :class:`DuplicateKey`. Python keeps
    the last value; other readers keep the first, so such text reads differently to
    each of them (RFC 8259, section 4).
    """
    try:
        return json.loads(text, object_pairs_hook=_unique if unique_keys else None)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise DuplicateKey(f"duplicate key `{repeated_key(pairs)}`")
    return found


def repeated_key(pairs: list[tuple[str, Any]]) -> str | None:
    """The first key an object's (key, value) pairs give twice; None when none is."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return None


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

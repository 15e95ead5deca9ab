"""Subset matching of expected payload fields against a rendered payload.

A mapping matches when every key it names is present with a matching value; a
list matches a list of the same length item by item; anything else must be equal
and of the same JSON type (``true`` is not ``1``).
"""

from __future__ import annotations

import json
from typing import Any

MISSING = "<missing>"


def _same_scalar(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return expected == actual
    return type(expected) is type(actual) and bool(expected == actual)


def mismatches(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Each difference as ``path: expected X, got Y``; empty when ``actual`` matches."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where or '(payload)'}: expected a mapping, got {_show(actual)}"]
        out: list[str] = []
        for key, value in expected.items():
            path = f"{where}.{key}" if where else str(key)
            if key not in actual:
                out.append(f"{path}: missing (expected {_show(value)})")
            else:
                out.extend(mismatches(value, actual[key], path))
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: expected a list, got {_show(actual)}"]
        if len(expected) != len(actual):
            return [f"{where}: expected {len(expected)} item(s), got {len(actual)}"]
        return [m for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for m in mismatches(e, a, f"{where}[{i}]")]
    if _same_scalar(expected, actual):
        return []
    return [f"{where}: expected {_show(expected)}, got {_show(actual)}"]


def project(expected: Any, actual: Any) -> Any:
    """``actual`` cut down to the shape of ``expected``, for a diff that shows only what matters."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: project(v, actual[k]) if k in actual else MISSING for k, v in expected.items()}
    if (isinstance(expected, list) and isinstance(actual, list)
            and len(expected) == len(actual)):
        return [project(e, a) for e, a in zip(expected, actual, strict=True)]
    return actual


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)

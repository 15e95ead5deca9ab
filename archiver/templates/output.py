"""What a rendered template must be: one JSON document that strict parsers accept.

Python's ``json`` module reads more than JSON: ``NaN``, ``Infinity`` and
``-Infinity``, numbers such as ``1e400`` (read as infinity), lone UTF-16
surrogates (``"\\ud800"``, which no UTF-8 text can hold), and nesting as deep as
the interpreter's recursion allows. A body holding any of these is refused by the
receiver of a webhook, cannot be stored in the state store's outbox, or cannot be
chained into the audit log. :func:`plain_json` is the one check of a render's
output, made by :meth:`CompiledTemplate.render_json` for every sink (audit log,
webhook, file lines) and for ``archiver validate``'s sample renders alike.

Refused, each with a message that says what was found:

- text that is not JSON (as before: where, and a short excerpt of the output);
- ``NaN``, ``Infinity``, ``-Infinity`` and numbers out of a double's range;
- integers too long to read (more digits than Python converts, 4,300 by default);
- a string or object key holding a lone surrogate (a pair that encodes one
  character, ``"\\ud83d\\ude00"``, is fine);
- arrays and objects nested more than ``MAX_JSON_DEPTH`` (64) levels deep;
- an object with the same key twice: parsers differ on which value they keep
  (Python's, and so the audit line, the last; a reader of the template, the first).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from archiver import jsonsafe

MAX_JSON_DEPTH = 64

_SURROGATE = re.compile("[\ud800-\udfff]")
_EXCERPT = 40


class NotPlainJson(ValueError):
    """The rendered output is not plain JSON; the message says why (without the
    template's name: the caller adds it)."""


def plain_json(text: str) -> Any:
    """The JSON value ``text`` holds, refused (:class:`NotPlainJson`) unless it is
    JSON that strict parsers accept (see the module's docstring)."""
    try:
        value = json.loads(
            text, parse_constant=_constant, parse_float=_float, parse_int=_int,
            object_pairs_hook=_object,
        )
    except json.JSONDecodeError as err:
        raise NotPlainJson(_bad_json(err)) from None
    except RecursionError:
        raise NotPlainJson(_too_deep()) from None
    _check_value(value)
    return value


def _constant(name: str) -> Any:
    raise NotPlainJson(
        f"rendered output is not plain JSON: {name} is not a JSON number (strict parsers "
        "refuse NaN and Infinity); render a number or null"
    )


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        key = jsonsafe.repeated_key(pairs) or ""
        raise NotPlainJson(
            f"rendered output is not plain JSON: the key {_excerpt(key)!a} twice in "
            "one object (parsers differ on which value they keep); render each key once"
        )
    return value


def _float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise NotPlainJson(_out_of_range(text))
    return number


def _out_of_range(text: str) -> str:
    return (
        f"rendered output is not plain JSON: the number {_excerpt(text)} is out of range "
        "(it reads as infinity)"
    )


def _int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise NotPlainJson(
            f"rendered output is not plain JSON: an integer of {len(text.lstrip('-')):,} "
            "digits is too long to read"
        ) from None
    try:
        float(number)  # a parser that reads numbers as doubles reads this one as infinity
    except OverflowError:
        raise NotPlainJson(_out_of_range(text)) from None
    return number


def _check_value(value: Any) -> None:
    """No lone surrogate in a string or key, no nesting deeper than MAX_JSON_DEPTH.
    Walked with a stack of its own: a deep value does not recurse."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_string(node)
        elif isinstance(node, dict | list):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise NotPlainJson(_too_deep())
            if isinstance(node, dict):
                for key, item in node.items():
                    _check_string(key)
                    stack.append((item, depth))
            else:
                stack.extend((item, depth) for item in node)


def _check_string(text: str) -> None:
    found = _SURROGATE.search(text)
    if found is not None:
        start = max(found.start() - _EXCERPT // 2, 0)
        raise NotPlainJson(
            f"rendered output is not plain JSON: a lone surrogate "
            f"({ascii(found.group())[1:-1]}) in the string "
            f"{text[start : found.end() + _EXCERPT // 2]!a}; UTF-8 cannot hold it"
        )


def _too_deep() -> str:
    return (
        f"rendered output is not plain JSON: arrays and objects nested more than "
        f"{MAX_JSON_DEPTH} levels deep"
    )


def _excerpt(text: str) -> str:
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"


def _bad_json(err: json.JSONDecodeError) -> str:
    # json reports a position in the rendered output, which loops and conditionals shift
    # away from template lines; quote the output there so it can be found in the template.
    start = max(err.pos - _EXCERPT // 2, 0)
    excerpt = err.doc[start : err.pos + _EXCERPT // 2]
    return (
        f"rendered output is not valid JSON: {err.msg} at output line {err.lineno} "
        f"column {err.colno}, near {excerpt!r}"
    )

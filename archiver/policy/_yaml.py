"""Policy YAML to plain data plus the position of every key and value.

Parsing composes the node tree with a safe loader and converts it here rather than
with PyYAML's constructor, because the conversion is where positions are recorded,
duplicate keys are caught, and anchors and aliases are refused: an alias is replaced
by null at compose time, so an alias bomb is never expanded.

The scalars are those of JSON: booleans are only ``true``/``false`` (YAML 1.1's
``yes``/``no``/``on``/``off`` would silently turn an outcome code like ``NO`` into
false) and dates stay strings.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from typing import Any

import yaml

from archiver.errors import Diagnostic
from archiver.policy import _codes as codes
from archiver.policy._control import control_characters
from archiver.policy._document import JsonPath, Positions, Spot

_TAG = "tag:yaml.org,2002:"
_BOOL = _TAG + "bool"
_JSON_SCALARS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null"))
# A policy nests about five levels; the limit keeps a hostile file from exhausting the
# Python stack in the composer, the conversion or the schema validator.
MAX_DEPTH = 64


class _Loader(yaml.SafeLoader):
    """A safe loader that records anchors and aliases instead of resolving them."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.refused: list[tuple[yaml.Mark, str]] = []
        self._anchors: dict[str, yaml.Mark] = {}
        self._aliased: set[str] = set()
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()  # type: ignore[no-untyped-call]
            if event.anchor not in self._aliased:  # one report per anchor keeps bombs readable
                self._aliased.add(event.anchor)
                self.refused.append(
                    (event.start_mark, f"YAML alias `*{event.anchor}` is not allowed; "
                                       "write the value out in full")
                )
            return yaml.ScalarNode(_TAG + "null", "", event.start_mark, event.end_mark)
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if event.anchor is not None:
            self._anchors.setdefault(event.anchor, event.start_mark)
        if self._depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def unused_anchors(self) -> list[tuple[yaml.Mark, str]]:
        return [
            (mark, f"YAML anchor `&{name}` is not allowed; anchors and aliases are refused")
            for name, mark in self._anchors.items()
            if name not in self._aliased
        ]


# YAML 1.2 core booleans only, and no timestamps (see the module docstring).
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _TAG + "timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(slots=True)
class Parsed:
    data: Any
    positions: Positions


def _spot(mark: yaml.Mark) -> Spot:
    return Spot(mark.line + 1, mark.column + 1)


class _Converter:
    """Turns composed nodes into JSON-like data, noting positions and problems."""

    def __init__(self, loader: _Loader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.positions = Positions()
        self.problems: list[Diagnostic] = []

    def problem(self, mark: yaml.Mark, code: str, message: str) -> None:
        spot = _spot(mark)
        self.problems.append(Diagnostic(self.file, spot.line, spot.col, code, message))

    def convert(self, node: yaml.Node, path: JsonPath) -> Any:
        self.positions.values[path] = _spot(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _TAG + "seq":
                self.problem(node.start_mark, codes.YAML_UNSUPPORTED, f"unsupported tag `{node.tag}`")
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        if node.tag not in _JSON_SCALARS:
            self.problem(node.start_mark, codes.YAML_UNSUPPORTED,
                         f"unsupported tag `{node.tag}`; use plain strings, numbers and booleans")
            return None
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        """A JSON scalar; a number JSON has not (``.nan``, ``.inf``) or one too long to
        be a number (Python's int conversion limit) is a problem at its spot."""
        try:
            value = self.loader.construct_object(node)
        except (ValueError, OverflowError, KeyError):
            # KeyError: `!!bool maybe`; ValueError: `!!int abc`, or more digits than
            # Python converts.
            digits, limit = sum(c.isdigit() for c in node.value), sys.get_int_max_str_digits()
            what = ("is too long to be a number" if digits > limit > 0
                    else f"cannot be read as `{node.tag.replace(_TAG, '!!')}`; use plain strings, "
                    "numbers and booleans")
            self.problem(node.start_mark, codes.YAML_UNSUPPORTED, f"`{_excerpt(node.value)}` {what}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.problem(node.start_mark, codes.YAML_UNSUPPORTED,
                         f"`{node.value}` is not a number a policy takes; write a finite number")
            return None
        return value

    def _mapping(self, node: yaml.MappingNode, path: JsonPath) -> dict[str, Any]:
        if node.tag != _TAG + "map":
            self.problem(node.start_mark, codes.YAML_UNSUPPORTED, f"unsupported tag `{node.tag}`")
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                self.problem(key_node.start_mark, codes.YAML_UNSUPPORTED,
                             "merge keys (`<<`) are not allowed; write the keys out")
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _TAG + "str":
                self.problem(key_node.start_mark, codes.YAML_UNSUPPORTED,
                             "keys must be plain text (quote numbers, booleans and null used as keys)")
                continue
            key = key_node.value
            child = (*path, key)
            if key in out:
                first = self.positions.keys[child]
                self.problem(key_node.start_mark, codes.DUPLICATE_KEY,
                             f"duplicate key `{key}` (first at line {first.line})")
                continue
            self.positions.keys[child] = _spot(key_node.start_mark)
            out[key] = self.convert(value_node, child)
        return out


def parse(text: str, file: str, kind: str = "policy") -> Parsed | list[Diagnostic]:
    """The document in ``text``, or every problem found while reading it; ``kind`` names
    what the text is, in the words of its problems."""
    control = control_characters(text, file, kind)
    if control:
        return control
    try:
        loader = _Loader(text)
    except yaml.YAMLError as err:  # the reader refused the text; the check above should have
        return [Diagnostic(file, 1, 1, codes.CONTROL_CHARACTER, f"cannot read YAML: {err}")]
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        return [_syntax(err, file)]
    except yaml.YAMLError as err:  # reader errors carry no mark
        return [Diagnostic(file, 1, 1, codes.YAML_SYNTAX, f"cannot read YAML: {err}")]
    finally:
        loader.dispose()
    converter = _Converter(loader, file)
    for mark, message in [*loader.refused, *loader.unused_anchors()]:
        converter.problem(mark, codes.YAML_ALIAS, message)
    data = converter.convert(root, ()) if root is not None else None
    if converter.problems:
        return sorted(converter.problems, key=lambda d: (d.line, d.col))
    return Parsed(data, converter.positions)


def _excerpt(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _syntax(err: yaml.MarkedYAMLError, file: str) -> Diagnostic:
    mark = err.problem_mark or err.context_mark
    spot = _spot(mark) if mark is not None else Spot(1, 1)
    what = err.problem or "cannot parse"
    if err.context:
        # The context ("while parsing a flow sequence") often starts lines earlier, at the
        # bracket or quote that was never closed: say where.
        start = _spot(err.context_mark) if err.context_mark is not None else spot
        where = f" started at line {start.line}" if start.line != spot.line else ""
        what += f" ({err.context}{where})"
    return Diagnostic(file, spot.line, spot.col, codes.YAML_SYNTAX, f"YAML syntax error: {what}")

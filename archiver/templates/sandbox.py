"""The one Jinja environment payload templates run in.

Templates come from policy authors, not from us, so they run sandboxed: the immutable
sandbox refuses dunder access (``''.__class__.__mro__``), the ``str.format`` and
``|attr("format")`` escapes to them, and calls that would mutate the context
(``items.append(1)``); ``StrictUndefined`` turns a misspelt name into an error instead of
an empty string that would still render as "valid" JSON. Templates are read only from
``*.j2`` files inside the policy's repository (:mod:`archiver.templates.loader`).

The sandbox bounds what a render may cost (:mod:`archiver.templates.bounds`): every
``{% for %}`` loop's items pass through a filter that counts them and watches the clock
(added to the parsed template, since Jinja has no hook for a loop that outputs nothing);
``*``, ``**``, ``+`` and ``%`` are checked before they build a huge value; every call and
filter checks the clock; and what captures output (``~``, ``{% set %}`` blocks, macros)
joins it under the size bound.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Undefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from archiver.templates import bounds
from archiver.templates.loader import RepositoryLoader

# Internal filters the parsed template is rewritten to call; no template can spell them.
LOOP_FILTER = "archiver:loop"
CONCAT_FILTER = "archiver:concat"


def tojson(value: Any) -> str:
    """Plain JSON for a JSON payload.

    Jinja's own ``tojson`` HTML-escapes ``<``, ``>``, ``&`` and ``'`` for embedding in
    pages, which would change the strings a warehouse receives.
    """
    return json.dumps(value, ensure_ascii=False, sort_keys=False, default=_not_json)


def _not_json(value: Any) -> Any:
    if isinstance(value, Undefined):
        # Rendering a StrictUndefined raises the error naming what was undefined (or what
        # the sandbox refused), which says far more than "not JSON serializable".
        str(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


class _CountedCaptures(CodeGenerator):
    """Compiles captured output (macros, ``{% set %}`` blocks, call blocks) to collect into
    a :class:`bounds.CaptureBuffer` instead of a plain list."""

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.capture_buffer()")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every render held to :mod:`archiver.templates.bounds`."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _CountedCaptures
    capture_buffer = bounds.CaptureBuffer
    # Jinja joins captured output with this.
    concat = staticmethod(bounds.bounded_join)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        return _bound(super()._parse(source, name, filename))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        bounds.check_binop(operator, left, right)
        result = super().call_binop(context, operator, left, right)
        bounds.check_result(result)
        return result

    def call(
        self, context: Context, obj: Any, /, *args: Any, **kwargs: Any
    ) -> Any:
        bounds.tick()
        # str.format comes wrapped by the sandbox; the method is behind __wrapped__.
        method = getattr(obj, "__wrapped__", obj)
        owner = getattr(method, "__self__", None)
        if isinstance(owner, str):
            args = bounds.check_str_method(owner, getattr(method, "__name__", ""), args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        bounds.check_result(result)
        return result


def _bound(tree: nodes.Template) -> nodes.Template:
    """Route every loop's items through LOOP_FILTER and every ``~`` through CONCAT_FILTER."""
    for loop in list(tree.find_all(nodes.For)):
        loop.iter = _filter(loop.iter, LOOP_FILTER)
    for concat in list(tree.find_all(nodes.Concat)):
        parts = nodes.List(concat.nodes, lineno=concat.lineno)
        concat.nodes = [_filter(parts, CONCAT_FILTER)]
    return tree


def _filter(node: nodes.Node, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


Args = tuple[Any, ...]
Kwargs = dict[str, Any]


def _guarded(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """A built-in filter that checks the clock, and its size arguments where it has any."""
    check = _SIZE_CHECKS.get(name)

    @functools.wraps(original)  # keeps Jinja's pass_context/pass_eval_context marks
    def guarded(*args: Any, **kwargs: Any) -> Any:
        bounds.tick()
        if check is not None:
            args = check(args, kwargs)
        result = original(*args, **kwargs)
        bounds.check_result(result)
        return result

    return guarded


def _arg(args: Args, kwargs: Kwargs, index: int, name: str, default: Any = None) -> Any:
    """A filter's argument by position (counting Jinja's injected first one) or name."""
    return args[index] if len(args) > index else kwargs.get(name, default)


def _center(args: Args, kwargs: Kwargs) -> Args:  # do_center(value, width=80)
    width = _arg(args, kwargs, 1, "width", 80)
    if isinstance(width, int):
        bounds.check_size(width, "`center`")
    return args


def _indent(args: Args, kwargs: Kwargs) -> Args:  # do_indent(s, width=4, ...)
    text, width = _arg(args, kwargs, 0, "s"), _arg(args, kwargs, 1, "width", 4)
    step = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    if isinstance(text, str):
        bounds.check_size(len(text) + step * (text.count("\n") + 1), "`indent`")
    return args


def _wordwrap(args: Args, kwargs: Kwargs) -> Args:  # do_wordwrap(env, s, width=79, _, wrapstring)
    text, width = _arg(args, kwargs, 1, "s"), _arg(args, kwargs, 2, "width", 79)
    wrap = _arg(args, kwargs, 4, "wrapstring")
    if isinstance(text, str) and isinstance(wrap, str) and isinstance(width, int):
        pieces = len(text) // max(width, 1) + 1
        bounds.check_size(len(text) + pieces * len(wrap), "`wordwrap`")
    return args


def _format(args: Args, kwargs: Kwargs) -> Args:  # do_format(value, *args, **kwargs)
    if args and isinstance(args[0], str):
        bounds.check_percent_format(args[0], kwargs or args[1:])
    return args


def _replace(args: Args, kwargs: Kwargs) -> Args:  # do_replace(eval_ctx, s, old, new, count)
    bounds.check_replace(_arg(args, kwargs, 1, "s"), _arg(args, kwargs, 2, "old"),
                         _arg(args, kwargs, 3, "new"), _arg(args, kwargs, 4, "count"))
    return args


def _join(args: Args, kwargs: Kwargs) -> Args:  # do_join(eval_ctx, value, d="", attribute)
    if len(args) < 2 or isinstance(args[1], Undefined):
        return args
    items = list(args[1])
    sep = _arg(args, kwargs, 2, "d", "")
    if isinstance(sep, str):
        size = sum(len(p) for p in items if isinstance(p, str))
        bounds.check_size(size + len(sep) * max(len(items) - 1, 0), "`join`")
    return (args[0], items, *args[2:])


def _pieces(index: int, name: str, what: str) -> Callable[[Args, Kwargs], Args]:
    def check(args: Args, kwargs: Kwargs) -> Args:
        bounds.check_count(_arg(args, kwargs, index, name), what)
        return args

    return check


_SIZE_CHECKS: dict[str, Callable[[Args, Kwargs], Args]] = {
    "center": _center,
    "indent": _indent,
    "wordwrap": _wordwrap,
    "format": _format,
    "replace": _replace,
    "join": _join,
    "batch": _pieces(1, "linecount", "a `batch` size"),  # do_batch(value, linecount, ...)
    "slice": _pieces(2, "slices", "a `slice` count"),  # do_slice(eval_ctx, value, slices, ...)
}


@functools.lru_cache(maxsize=32)
def environment(folder: Path, root: Path) -> BoundedSandbox:
    """The sandbox for templates named relative to ``folder``, loaded only from ``root``.

    No extensions are enabled, so ``{% do %}`` does not exist; ``lipsum`` (text of any
    length on request) is removed.
    """
    env = BoundedSandbox(
        loader=RepositoryLoader(folder, root),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["tojson"] = tojson
    env.filters.update({name: _guarded(name, f) for name, f in env.filters.items()})
    env.filters[LOOP_FILTER] = bounds.bounded_loop
    env.filters[CONCAT_FILTER] = bounds.concat_values
    env.globals.pop("lipsum", None)
    return env

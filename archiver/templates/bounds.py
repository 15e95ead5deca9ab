"""How much one render may take: time, loop iterations, output, and the size of what it builds.

Jinja's sandbox keeps a template inside its context; it does not stop one from running
forever or filling memory. These bounds do, for every render (``archiver validate``'s
sample renders and a run's alike):

``MAX_RENDER_SECONDS`` (2)
    wall time of one render, checked at every loop iteration, call, filter and piece of
    output;
``MAX_LOOP_ITERATIONS`` (1,000,000)
    iterations of all ``{% for %}`` loops of one render together;
``MAX_OUTPUT_CHARS`` (1 MiB: 1,048,576 characters)
    the rendered text, and also the largest string or list one expression may build
    (``'x' * n``, ``a ~ b``, ``s.center(n)``, ``'%*d' % (n, 1)``, ``xs | join(sep)``, a
    captured ``{% set %}`` block or a macro's output);
``MAX_BUILT`` (16 MiB: 16,777,216)
    what one render may build in all, freed or not (what operators, calls and filters
    return, and what captured output collects), a character counting 1 and a list item 8
    (the reference it takes): a loop that builds a large value at every turn stops here
    instead of filling memory;
``MAX_INT_BITS`` (65,536)
    the largest integer ``*`` and ``**`` may make (about 19,700 digits).

A render past a bound stops with :class:`BoundExceeded`, whose message says which bound.
The budget of a render lives in a context variable: renders in several threads at once
each count their own. Outside a render (Jinja folding constants while it compiles) only
the size bounds apply.

Size bounds are checked before a value is built where the operation tells its size in
advance; a single Python operation (one sort, one comparison) is not interrupted, but
every value it works on was built under these bounds.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from string import Formatter
from typing import Any

MAX_RENDER_SECONDS = 2.0
MAX_LOOP_ITERATIONS = 1_000_000
MAX_OUTPUT_CHARS = 1024 * 1024
MAX_BUILT = 16 * MAX_OUTPUT_CHARS
_ITEM_COST = 8
MAX_INT_BITS = 65_536

_SIZED = (str, list, tuple)
# A %-conversion's width and precision: "%-08.3f", "%*d", "%(name)10s".
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


class BoundExceeded(Exception):
    """A render went past one of the bounds of this module; the message says which."""


@dataclass(slots=True)
class _Budget:
    deadline: float
    iterations: int = 0
    built: int = 0


_BUDGET: ContextVar[_Budget | None] = ContextVar("archiver_template_budget", default=None)


@contextmanager
def render_budget() -> Iterator[None]:
    """One render's budget: time from now, no loop iterations spent yet."""
    token = _BUDGET.set(_Budget(time.monotonic() + MAX_RENDER_SECONDS))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def tick() -> None:
    """Stop the render when its time is up."""
    budget = _BUDGET.get()
    if budget is not None and time.monotonic() > budget.deadline:
        raise BoundExceeded(_time_message())


def bounded_loop(iterable: Iterable[Any]) -> Iterator[Any]:
    """The items of a ``{% for %}`` loop, each counted against the render's budget."""
    budget = _BUDGET.get()
    for item in iterable:
        if budget is not None:
            budget.iterations += 1
            if budget.iterations > MAX_LOOP_ITERATIONS:
                raise BoundExceeded(
                    f"stopped at the loop bound: more than {MAX_LOOP_ITERATIONS:,} loop "
                    "iterations in one render"
                )
            if time.monotonic() > budget.deadline:
                raise BoundExceeded(_time_message())
        yield item


def check_output(size: int) -> None:
    """``size`` characters of output so far: at most MAX_OUTPUT_CHARS."""
    if size > MAX_OUTPUT_CHARS:
        raise BoundExceeded(
            f"stopped at the output bound: more than {MAX_OUTPUT_CHARS:,} characters "
            "(1 MiB) of output in one render"
        )


def check_size(size: int, what: str) -> None:
    """A string or list of ``size`` items about to be built by ``what``."""
    if size > MAX_OUTPUT_CHARS:
        raise BoundExceeded(
            f"stopped at the size bound: {what} would make {size:,} characters or items "
            f"(at most {MAX_OUTPUT_CHARS:,})"
        )


def spend(size: int) -> None:
    """``size`` built (characters, or 8 per list item): counted against MAX_BUILT."""
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.built += size
    if budget.built > MAX_BUILT:
        raise BoundExceeded(
            f"stopped at the size bound: the render built more than {MAX_BUILT // 2**20} MiB "
            "of text and lists in all"
        )


class CaptureBuffer(list[Any]):
    """Where Jinja collects captured output (macros, ``{% set %}`` blocks, call blocks):
    every piece is counted as built, so a capture cannot grow without bound."""

    def append(self, item: Any) -> None:
        spend(len(item) if isinstance(item, str) else _ITEM_COST)
        tick()
        super().append(item)

    def extend(self, items: Iterable[Any]) -> None:
        for item in items:
            self.append(item)


def check_count(count: Any, what: str) -> None:
    """A number of pieces (slices, batch size) a filter is asked to make."""
    if isinstance(count, int) and count > MAX_LOOP_ITERATIONS:
        raise BoundExceeded(
            f"stopped at the size bound: {what} of {count:,} (at most {MAX_LOOP_ITERATIONS:,})"
        )


def bounded_join(parts: Iterable[str], sep: str = "") -> str:
    """``sep.join(parts)``, refused when the result would pass the size bound."""
    items = parts if isinstance(parts, list) else list(parts)
    size = sum(len(p) for p in items if isinstance(p, str))
    check_size(size + len(sep) * max(len(items) - 1, 0), "joining text")
    joined = sep.join(items)
    spend(len(joined))
    return joined


def concat_values(values: Sequence[Any]) -> str:
    """The ``~`` operator: every operand as text, joined under the size bound."""
    return bounded_join([str(v) for v in values])


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``*``, ``**``, ``+`` and ``%`` whose result would pass a size bound."""
    if operator == "*":
        _check_product(left, right)
    elif operator == "**":
        if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
            _check_bits(abs(left).bit_length() * right, "`**`")
    elif operator == "+":
        if isinstance(left, _SIZED) and isinstance(right, _SIZED):
            check_size(len(left) + len(right), "`+`")
    elif operator == "%" and isinstance(left, str):
        check_percent_format(left, right)


def _check_product(left: Any, right: Any) -> None:
    if _is_int(left) and _is_int(right):
        _check_bits(abs(left).bit_length() + abs(right).bit_length(), "`*`")
        return
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, _SIZED) and _is_int(times):
            check_size(len(seq) * times, "`*`")


def check_percent_format(fmt: str, args: Any) -> None:
    """``fmt % args`` (and the ``format`` filter): no width or precision past the bound."""
    values = args if isinstance(args, tuple) else (args,)
    ints = [n for n in values if _is_int(n)]
    for match in _PERCENT_SPEC.finditer(fmt):
        for group in match.groups():
            if group == "*":
                for n in ints:
                    check_size(n, "a `*` width or precision")
            elif group:
                check_size(int(group), "a width or precision")


def check_str_format(fmt: str, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
    """``fmt.format(...)``: no width or precision past the bound, nested ones included."""
    nested = False
    try:
        fields = list(Formatter().parse(fmt))
    except ValueError:
        return  # str.format raises the same error itself
    for _, _, spec, _ in fields:
        if not spec:
            continue
        nested = nested or "{" in spec
        for digits in _DIGITS.findall(spec):
            check_size(int(digits), "a width or precision")
    if nested:
        # A nested field ({1}, {w}, {1[0]}) is replaced by the text of what it names
        # before the spec is read: any number, or run of digits in any text, among the
        # arguments (and in the lists and dicts they hold) may become a width.
        stack: list[Any] = [*args, *kwargs.values()]
        while stack:
            value = stack.pop()
            if _is_int(value):
                check_size(value, "a nested width or precision")
            elif isinstance(value, float) and math.isfinite(value):
                check_size(int(value), "a nested width or precision")
            elif isinstance(value, str):
                for run in _DIGITS.findall(value):
                    digits = run.lstrip("0") or "0"
                    size = int(digits) if len(digits) <= 18 else MAX_OUTPUT_CHARS + 1
                    check_size(size, "a nested width or precision")
            elif isinstance(value, list | tuple):
                stack.extend(value)
            elif isinstance(value, dict):
                stack.extend(value.keys())
                stack.extend(value.values())


def check_str_method(
    text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """A str method called from a template whose result size depends on its arguments;
    the arguments to call it with (``join``'s items, read once)."""
    if name in ("center", "ljust", "rjust", "zfill") and args and _is_int(args[0]):
        check_size(args[0], f"`{name}`")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if _is_int(size):
            check_size(len(text) + text.count("\t") * size, "`expandtabs`")
    elif name == "replace" and len(args) >= 2:
        check_replace(text, args[0], args[1], args[2] if len(args) > 2 else None)
    elif name == "format":
        check_str_format(text, args, kwargs)
    elif name == "format_map" and args and isinstance(args[0], dict):
        check_str_format(text, (), args[0])
    elif name == "join" and len(args) == 1 and not kwargs:
        items = list(args[0])
        size = sum(len(p) for p in items if isinstance(p, str))
        check_size(size + len(text) * max(len(items) - 1, 0), "`join`")
        return (items,)
    return args


def check_replace(text: Any, old: Any, new: Any, count: Any) -> None:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    found = len(text) + 1 if old == "" else text.count(old)
    if _is_int(count) and count >= 0:
        found = min(found, count)
    check_size(len(text) + found * len(new), "`replace`")


def check_result(value: Any) -> None:
    """A value an operator, call or filter returned: a string or list is counted as built,
    and refused past the size bound."""
    if isinstance(value, _SIZED):
        check_size(len(value), "a call")
        spend(len(value) if isinstance(value, str) else len(value) * _ITEM_COST)


def _check_bits(bits: int, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise BoundExceeded(
            f"stopped at the number bound: {what} would make a number of about {bits:,} bits "
            f"(at most {MAX_INT_BITS:,})"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _time_message() -> str:
    return f"stopped at the time bound: rendering took more than {MAX_RENDER_SECONDS:g} s"

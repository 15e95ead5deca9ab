"""The one Jinja environment payload templates run in.

Templates come from policy authors, not from us, so they run sandboxed: the immutable
sandbox refuses dunder access (``''.__class__.__mro__``) and calls that would mutate the
context (``items.append(1)``); ``StrictUndefined`` turns a misspelt name into an error
instead of an empty string that would still render as "valid" JSON. The sandbox does not
bound CPU time or memory; policies, and so their templates, are reviewed before they run.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment


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


@lru_cache(maxsize=32)
def environment(folder: str) -> ImmutableSandboxedEnvironment:
    """The sandbox for templates in ``folder``; ``{% include %}`` reaches nothing outside it.

    The loader refuses ``..`` segments, and absolute names resolve inside the folder.
    No extensions are enabled, so ``{% do %}`` does not exist.
    """
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(folder),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["tojson"] = tojson
    return env

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

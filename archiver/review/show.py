"""How review output names files: relative to the current folder when inside it."""

from __future__ import annotations

import os
from pathlib import Path


def shown_path(path: Path | str) -> str:
    """``path`` as a person in the current folder would type it (absolute when outside)."""
    p = Path(path)
    if not p.is_absolute():
        return str(path)
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return os.fspath(p)

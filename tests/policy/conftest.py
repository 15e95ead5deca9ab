"""A valid policy with a template, written to a temporary folder, for tests to break."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ._texts import AUDIT_TEMPLATE, VALID

Writer = Callable[..., Path]


@pytest.fixture
def write(tmp_path: Path) -> Writer:
    """Write ``text`` as policy.yaml (and the template) and return the policy's path."""

    def _write(text: str = VALID, template: str = AUDIT_TEMPLATE, name: str = "policy.yaml") -> Path:
        (tmp_path / "templates").mkdir(exist_ok=True)
        (tmp_path / "templates" / "audit.json.j2").write_text(template)
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write

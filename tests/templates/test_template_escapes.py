"""The sandbox escapes through ``str.format`` stay closed.

With Jinja2 3.1.5, ``|attr("format")`` handed a template the raw ``str.format`` method,
whose format fields walk attributes freely (CVE-2025-27516): the template below wrote
``os.environ`` into the audit log. 3.1.6 closes it, and pyproject.toml requires it.
"""

from __future__ import annotations

import os
import re
from importlib.metadata import version
from pathlib import Path

import pytest

from archiver.errors import TemplateError
from archiver.templates import compile_template
from tests.support import REPO

MARKER = "escape-marker-Hd27"


def release(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_the_installed_and_required_jinja_is_at_least_3_1_6() -> None:
    assert release(version("jinja2")) >= (3, 1, 6)
    required = re.search(r'"jinja2>=([\d.]+)"', (REPO / "pyproject.toml").read_text())
    assert required is not None and release(required.group(1)) >= (3, 1, 6)


@pytest.mark.parametrize(
    "expression",
    [
        '("{0.__init__.__globals__[os].environ}" | attr("format"))(cycler)',
        '"{0.__init__.__globals__[os].environ}".format(cycler)',
        '"{0.__class__.__mro__}" | attr("format")(run_id)',
        '"{x.__class__}".format_map({"x": run_id})',
        '"{x.__class__}".format(x=run_id)',
    ],
)
def test_format_escapes_are_refused_by_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, expression: str
) -> None:
    monkeypatch.setenv("ESCAPE_MARKER", MARKER)
    path = tmp_path / "t.json.j2"
    path.write_text('{\n"x": {{ (' + expression + ") | tojson }}\n}")
    with pytest.raises(TemplateError) as info:
        compile_template(path).render_json({"run_id": "r1"})
    assert info.value.line == 2
    assert "refused by the sandbox: access to attribute '__" in str(info.value)
    assert "is unsafe" in str(info.value)
    assert MARKER not in str(info.value)
    assert os.environ["ESCAPE_MARKER"] == MARKER

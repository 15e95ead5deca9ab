from __future__ import annotations

import os
from pathlib import Path

from archiver.templates import compile_template, load_template
from archiver.templates.compiled import DEFAULTS_DIR


def test_compiled_templates_are_cached_per_path(tmp_path: Path) -> None:
    path = tmp_path / "t.json.j2"
    path.write_text('{"v": 1}')
    first = compile_template(path)
    assert compile_template(path) is first
    assert first.name == str(path)
    other = tmp_path / "u.json.j2"
    other.write_text('{"v": 1}')
    assert compile_template(other) is not first


def test_an_edited_template_is_compiled_again(tmp_path: Path) -> None:
    path = tmp_path / "t.json.j2"
    path.write_text('{"v": 1}')
    assert compile_template(path).render_json({}) == {"v": 1}
    path.write_text('{"v": 22}')
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert compile_template(path).render_json({}) == {"v": 22}


def test_load_template_uses_the_given_path_or_the_packaged_default(tmp_path: Path) -> None:
    path = tmp_path / "mine.json.j2"
    path.write_text('{"mine": true}')
    assert load_template(path, "audit.json.j2").render_json({}) == {"mine": True}
    default = load_template(None, "audit.json.j2")
    assert Path(default.name) == DEFAULTS_DIR / "audit.json.j2"

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from archiver.errors import TemplateError
from archiver.templates import compile_template


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_file_is_a_template_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.json.j2"
    with pytest.raises(TemplateError) as info:
        compile_template(path)
    assert info.value.template == str(path)
    assert info.value.line is None
    assert "not found" in str(info.value)


def test_folder_is_not_a_template(tmp_path: Path) -> None:
    folder = tmp_path / "folder.j2"
    folder.mkdir()
    with pytest.raises(TemplateError, match="it is a folder, not a regular file"):
        compile_template(folder)


def test_a_socket_is_not_a_template(tmp_path: Path) -> None:
    path = tmp_path / "socket.json.j2"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(TemplateError, match="it is a socket, not a regular file"):
            compile_template(path)


def test_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "t.json.j2", '{\n  "a": 1,\n  "b": {{ batch.id }\n}\n')
    with pytest.raises(TemplateError) as info:
        compile_template(path)
    assert info.value.template == str(path)
    assert info.value.line == 3
    assert str(info.value).startswith(f"{path}:3: syntax error")


def test_do_statement_is_not_enabled(tmp_path: Path) -> None:
    path = write(tmp_path, "t.json.j2", "{}\n{% do items.append(1) %}\n")
    with pytest.raises(TemplateError) as info:
        compile_template(path)
    assert info.value.line == 2
    assert "'do'" in str(info.value)


@pytest.mark.parametrize(
    ("source", "line", "needle"),
    [
        ('{\n  "a": {{ run_id | tojson }},\n\n  "b": {{ nope }}\n}', 4, "'nope' is undefined"),
        ('{\n  "a": {{ batch.nosuch | tojson }}\n}', 2, "has no attribute 'nosuch'"),
        ('{\n  "a": {{ [1, batch.nosuch] | tojson }}\n}', 2, "has no attribute 'nosuch'"),
        (
            '{\n{% for x in batch.attempt_ids %}\n  "{{ x }}": {{ x.missing }},\n{% endfor %}\n}',
            3,
            "has no attribute 'missing'",
        ),
    ],
)
def test_undefined_name_names_file_and_line(
    tmp_path: Path, source: str, line: int, needle: str
) -> None:
    path = write(tmp_path, "t.json.j2", source)
    template = compile_template(path)
    with pytest.raises(TemplateError) as info:
        template.render_json({"run_id": "r1", "batch": {"attempt_ids": ["a"]}})
    assert info.value.template == str(path)
    assert info.value.line == line
    assert needle in str(info.value)
    assert str(info.value).startswith(f"{path}:{line}: undefined")


def test_other_render_errors_name_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, "t.json.j2", '{\n  "ratio": {{ n // zero }}\n}')
    with pytest.raises(TemplateError) as info:
        compile_template(path).render_json({"n": 1, "zero": 0})
    assert (info.value.template, info.value.line) == (str(path), 2)
    assert "ZeroDivisionError" in str(info.value)


def test_invalid_json_output_says_what_json_said(tmp_path: Path) -> None:
    path = write(tmp_path, "t.json.j2", '{\n  "a": {{ name }}\n}')
    with pytest.raises(TemplateError) as info:
        compile_template(path).render_json({"name": "alice"})
    message = str(info.value)
    assert info.value.template == str(path)
    assert "not valid JSON: Expecting value at output line 2 column 8" in message
    assert "alice" in message


@pytest.mark.parametrize(
    "expression",
    ["''.__class__.__mro__", "''.__class__.__mro__ | tojson", "run_id.__class__ | tojson"],
)
def test_sandbox_refuses_dunder_access(tmp_path: Path, expression: str) -> None:
    path = write(tmp_path, "t.json.j2", '{\n"x": {{ ' + expression + " }}\n}")
    with pytest.raises(TemplateError) as info:
        compile_template(path).render_json({"run_id": "r1"})
    assert info.value.line == 2
    assert "refused by the sandbox" in str(info.value)
    assert "__class__" in str(info.value)


@pytest.mark.parametrize(
    "expression",
    ["items.append(1)", "items.clear()", "batch.update({'id': 'x'})", "batch.pop('id')"],
)
def test_sandbox_refuses_mutating_the_context(tmp_path: Path, expression: str) -> None:
    path = write(tmp_path, "t.json.j2", '{\n\n"x": {{ ' + expression + " }}\n}")
    items = [0]
    batch = {"id": "b1"}
    with pytest.raises(TemplateError) as info:
        compile_template(path).render_json({"items": items, "batch": batch})
    assert info.value.line == 3
    assert "refused by the sandbox" in str(info.value)
    assert items == [0]
    assert batch == {"id": "b1"}


def test_include_inside_the_folder_works(tmp_path: Path) -> None:
    write(tmp_path / "tpl", "part.j2", '"id": {{ run_id | tojson }}')
    path = write(tmp_path / "tpl", "t.json.j2", '{ {% include "part.j2" %} }')
    assert compile_template(path).render_json({"run_id": "r1"}) == {"id": "r1"}


@pytest.mark.parametrize("target", ["../secret.j2", "sub/../../secret.j2", "ABSOLUTE"])
def test_include_outside_the_folder_fails(tmp_path: Path, target: str) -> None:
    secret = write(tmp_path, "secret.j2", '"leaked": true')
    if target == "ABSOLUTE":
        target = str(secret)
    path = write(tmp_path / "tpl", "t.json.j2", '{\n  {% include "' + target + '" %}\n}')
    (tmp_path / "tpl" / "sub").mkdir()
    with pytest.raises(TemplateError) as info:
        compile_template(path).render_json({})
    assert info.value.template == str(path)
    assert info.value.line == 2
    assert "cannot include" in str(info.value)


def test_error_in_an_included_template_names_that_file(tmp_path: Path) -> None:
    part = write(tmp_path, "part.j2", '\n\n"id": {{ nope }}')
    path = write(tmp_path, "t.json.j2", '{ {% include "part.j2" %} }')
    with pytest.raises(TemplateError) as info:
        compile_template(path).render_json({})
    assert Path(info.value.template) == part
    assert info.value.line == 3


def test_syntax_error_in_an_included_template_names_that_file(tmp_path: Path) -> None:
    part = write(tmp_path, "part.j2", '"id":\n {{ nope }')
    path = write(tmp_path, "t.json.j2", '{ {% include "part.j2" %} }')
    with pytest.raises(TemplateError) as info:
        compile_template(path).render_json({})
    assert Path(info.value.template) == part
    assert info.value.line == 2
    assert "syntax error" in str(info.value)


def test_error_is_terminal_config_error(tmp_path: Path) -> None:
    from archiver.errors import EXIT_CONFIG, is_transient

    err = TemplateError(str(tmp_path), 1, "x")
    assert err.exit_code == EXIT_CONFIG
    assert not is_transient(err)


def test_tojson_emits_plain_json(tmp_path: Path) -> None:
    path = write(tmp_path, "t.json.j2", "{{ value | tojson }}")
    value = {"z": "<a href='x'>&</a>", "a": "é€", "n": None, "l": [1, 2.5, True]}
    template = compile_template(path)
    assert template.render_json({"value": value}) == value
    # The rendered text is exactly json.dumps: no HTML escaping, no \u escapes, key order kept.
    text = template._template.render(value=value)
    assert text == json.dumps(value, ensure_ascii=False)


def test_tojson_refuses_values_that_are_not_json(tmp_path: Path) -> None:
    path = write(tmp_path, "t.json.j2", "{\n{{ value | tojson }}\n}")
    with pytest.raises(TemplateError) as info:
        compile_template(path).render_json({"value": object()})
    assert info.value.line == 2
    assert "object is not a JSON value" in str(info.value)

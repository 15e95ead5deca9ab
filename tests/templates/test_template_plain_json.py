"""A render's output must be JSON that strict parsers accept, for every sink and for
`validate`'s sample renders alike: no NaN or Infinity, no lone surrogate, bounded
nesting; each refusal is a TemplateError naming the template, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archiver.errors import TemplateError
from archiver.templates import compile_template
from archiver.templates.output import MAX_JSON_DEPTH
from tests.support import policy_dict, run_cli, write_policy


def template(folder: Path, text: str):
    path = folder / "t.json.j2"
    path.write_text(text, encoding="utf-8")
    return compile_template(path)


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": Infinity}', "Infinity is not a JSON number"),
        ('{"a": -Infinity}', "-Infinity is not a JSON number"),
        ('{"a": 1e400}', "the number 1e400 is out of range"),
        ('{"a": -1{{ "0" * 400 }}}', "the number -1000000000"),
        ('{"a": 1{{ "0" * 400 }}}', "is out of range (it reads as infinity)"),
        ('{"a": {{ "1" * 5000 }}}', "an integer of 5,000 digits is too long"),
        ('{"a": "\\ud800"}', "a lone surrogate (\\ud800)"),
        ('{"\\udfff": 1}', "a lone surrogate (\\udfff)"),
        ('["x\\ud83d"]', "a lone surrogate (\\ud83d)"),
        ('{{ "[" * 5000 }}{{ "]" * 5000 }}', f"nested more than {MAX_JSON_DEPTH} levels"),
        ('{{ "[" * 65 }}{{ "]" * 65 }}', f"nested more than {MAX_JSON_DEPTH} levels"),
        ('{{ "{\\"a\\":" * 65 }}1{{ "}" * 65 }}', f"nested more than {MAX_JSON_DEPTH} levels"),
        # A reviewer reads the first; json.loads, and so the audit line, keeps the last.
        ('{"run_id": "r-1", "n": 1, "run_id": "forged"}', "the key 'run_id' twice in one object"),
        ('[{"a": {"b\\n": 1, "b\\n": 2}}]', "the key 'b\\n' twice in one object"),
    ],
)
def test_output_that_is_not_plain_json_is_refused_naming_the_template(tmp_path, source, needle):
    compiled = template(tmp_path, source)
    with pytest.raises(TemplateError) as info:
        compiled.render_json({})
    assert info.value.template == str(tmp_path / "t.json.j2")
    assert "rendered output is not plain JSON" in str(info.value)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def _nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # a surrogate pair is one character
        ('{"a": "\\ud83d\\ude00", "b": 1.5e300, "c": -0}', {"a": "\U0001f600", "b": 1.5e300, "c": 0}),
        # in a double's range, if rounded
        ('{"a": 1{{ "0" * 300 }}, "b": 9007199254740993}', {"a": 10**300, "b": 9007199254740993}),
        ('{{ "[" * 64 }}{{ "]" * 64 }}', _nested(64)),
        ('{"a": "\\u00e9\\u0000"}', {"a": "\u00e9\u0000"}),
    ],
)
def test_plain_json_passes(tmp_path, source, expected):
    value = template(tmp_path, source).render_json({})
    assert value == expected
    # and it goes out as strict JSON, UTF-8 encodable
    json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")


@pytest.mark.parametrize("sink", ["audit_log", "webhook"])
@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": "\\ud800"}', "a lone surrogate"),
        ('{{ "[" * 5000 }}{{ "]" * 5000 }}', "levels deep"),
        ('{"a": 1, "a": 2}', "the key 'a' twice"),
    ],
)
def test_validate_refuses_it_with_t003_for_every_sink(tmp_path, sink, body, needle):
    (tmp_path / "bad.json.j2").write_text(body)
    doc = policy_dict(["c1"])
    doc["sinks"] = [
        {"type": "audit_log", "path": "audit.jsonl", "template": "bad.json.j2"}
        if sink == "audit_log" else
        {"type": "webhook", "url": "embedded", "secret_env": "DW_WEBHOOK_SECRET",
         "template": "bad.json.j2"}
    ]
    policy = write_policy(tmp_path / "p.yaml", doc)
    result = run_cli(["validate", str(policy)], {}, cwd=tmp_path)
    assert result.returncode == 78, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout + result.stderr
    assert "bad.json.j2:1:1: T003 template fails on a sample" in out
    assert needle in out

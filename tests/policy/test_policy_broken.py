"""Each broken policy makes `archiver validate` exit 78 and name the right file and line."""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver.cli import cli
from archiver.errors import EXIT_CONFIG
from archiver.policy import check_file

from ._texts import AUDIT_TEMPLATE, VALID, line_of
from .conftest import Writer


@dataclass(frozen=True)
class Case:
    id: str
    old: str  # text of VALID to replace ("" = replace the whole policy by ``new``)
    new: str
    needle: str  # the expected line is the first one containing this
    code: str
    in_message: str = ""
    template: str = AUDIT_TEMPLATE
    in_template: bool = False  # the needle is looked up in the template, not the policy


BOMB = """\
version: 1
name: bomb
campaigns: [{id: c1}]
description: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: [*e, *e, *e, *e, *e, *e, *e, *e, *e]
"""

BAD_JINJA = """\
{
  "event": {{ event | tojson }},
  "run_id": {{ run_id | }},
  "at": {{ timestamp | tojson }}
}
"""

CASES = [
    Case("max-items-500", "max_items: 200", "max_items: 500", "max_items: 500", "S005",
         "the maximum is 200"),
    Case("unknown-key", "max_items: 200", "max_item: 20", "max_item:", "S001",
         "unknown key `max_item`; did you mean `max_items`?"),
    Case("wrong-type", "timeout_seconds: 30", "timeout_seconds: fast", "timeout_seconds", "S003",
         "must be a number"),
    Case("no-campaigns", "campaigns:\n  - id: 3f6c2a10-8d4e-4b7a-9c21-5e0f1a2b3c4d\n"
         "    on_active: pause_and_resume\n  - id: 7b1e9d42-5a3c-4f60-8e17-2c9d0b4a6f81\n",
         "campaigns: []\n", "campaigns: []", "S005", "at least 1 item"),
    Case("campaigns-missing", "campaigns:\n  - id: 3f6c2a10-8d4e-4b7a-9c21-5e0f1a2b3c4d\n"
         "    on_active: pause_and_resume\n  - id: 7b1e9d42-5a3c-4f60-8e17-2c9d0b4a6f81\n",
         "", "version: 1", "S002", "missing required key `campaigns`"),
    Case("on-active-maybe", "on_active: pause_and_resume", "on_active: maybe", "on_active",
         "S004", "expected one of: pause_and_resume, skip, fail"),
    Case("missing-template", "templates/audit.json.j2", "templates/gone.json.j2",
         "templates/gone.json.j2", "T001", "not found"),
    Case("jinja-syntax-error", "", VALID, '"run_id"', "T002",
         "template does not compile", template=BAD_JINJA, in_template=True),
    Case("duplicate-campaign", "7b1e9d42-5a3c-4f60-8e17-2c9d0b4a6f81",
         "3F6C2A10-8D4E-4B7A-9C21-5E0F1A2B3C4D", "3F6C2A10", "V001", "listed twice (first at line 7)"),
    Case("alias-bomb", "", BOMB, "b: &b", "P004", "alias `*a` is not allowed"),
    Case("duplicate-key", "batch:\n", "name: again\nbatch:\n", "name: again", "P005",
         "duplicate key `name` (first at line 2)"),
    Case("yaml-syntax", "  max_items: 200", "  max_items: 200: 5", "max_items: 200: 5", "P003",
         "mapping values are not allowed here"),
    Case("unclosed-flow-list", "  max_items: 200", "  max_items: [200", "sinks:", "P003",
         "flow sequence started at line 20"),
    Case("misspelt-stage-type", "  - type: outcome\n", "  - type: outcomes\n", "outcomes", "S004",
         "did you mean `outcome`?"),
    Case("plain-http", "base_url: embedded", "base_url: http://cxone.example.com", "base_url",
         "V006", "must use https://"),
    Case("rule-not-approved", "- outcome: SURVEY_TAKEN", "- outcome: BUSY", "outcome: BUSY", "V002",
         "does not approve it"),
    Case("yaml-1.1-boolean", "max_items: 200", "max_items: 200\n  delete_active: yes",
         "delete_active", "S003", "write true or false"),
    Case("number-past-int-limit", "max_items: 200", "max_items: 2" + "0" * 5000, "max_items: 2",
         "P006", "is too long to be a number"),
    # A value its explicit tag cannot convert: not "too long" (ValueError), not a
    # KeyError traceback.
    Case("int-tag-on-text", "timeout_seconds: 30", "timeout_seconds: !!int abc", "timeout_seconds",
         "P006", "`abc` cannot be read as `!!int`"),
    Case("bool-tag-on-text", "max_items: 200", "max_items: 200\n  delete_active: !!bool maybe",
         "delete_active", "P006", "`maybe` cannot be read as `!!bool`"),
    Case("nan", "timeout_seconds: 30", "timeout_seconds: .nan", "timeout_seconds", "P006",
         "`.nan` is not a number a policy takes"),
    Case("infinity", "timeout_seconds: 30", "timeout_seconds: .inf", "timeout_seconds", "P006",
         "`.inf` is not a number a policy takes"),
    Case("version-as-text", "version: 1", 'version: "1"', 'version: "1"', "S004",
         '`version` must be 1, not the text `1` (write it without quotes)'),
    Case("unknown-plugin", "  - type: anonymized\n", "  - type: no-such-plugin\n", "no-such-plugin",
         "V008", "unknown filter type `no-such-plugin`"),
]


def _invoke(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["validate", str(path)])
    return result.exit_code, result.output


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_broken_policy_points_at_the_line(case: Case, write: Writer) -> None:
    text = case.new if not case.old else VALID.replace(case.old, case.new, 1)
    assert case.old == "" or text != VALID, "the case does not change the policy"
    path = write(text, template=case.template)
    if case.in_template:
        where = path.parent / "templates" / "audit.json.j2"
        line = line_of(case.template, case.needle)
    else:
        where = path
        line = line_of(text, case.needle)

    code, output = _invoke(path)

    assert code == EXIT_CONFIG, output
    expected = f"{where}:{line}:"
    matching = [o for o in output.splitlines() if o.startswith(expected) and f" {case.code} " in o]
    assert matching, f"no `{expected}... {case.code}` in:\n{output}"
    assert case.in_message in matching[0]


def test_file_over_one_mebibyte_is_refused_before_parsing(write: Writer) -> None:
    path = write(VALID + "# padding to push the file over the limit\n" * 30_000)
    assert path.stat().st_size > 1024 * 1024

    code, output = _invoke(path)

    assert code == EXIT_CONFIG
    assert output.splitlines()[0].startswith(f"{path}:1:1: P001 ")


def test_a_file_with_no_size_and_no_end_is_read_no_further_than_the_limit(tmp_path: Path) -> None:
    # A FIFO reports size 0: the limit is enforced while reading, not from the size. (The
    # command line refuses a FIFO unopened; the loader still meets one put in its place.)
    fifo = tmp_path / "endless.yaml"
    os.mkfifo(fifo)
    stop = threading.Event()

    def feed() -> None:
        # The reader closes its end once it has read enough: the pipe breaks here.
        with contextlib.suppress(BrokenPipeError), fifo.open("wb", buffering=0) as out:
            while not stop.is_set():
                out.write(b"# " + b"x" * 65_534 + b"\n")

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        found = check_file(fifo)
    finally:
        stop.set()
    assert [(d.line, d.col, d.code) for d in found] == [(1, 1, "P001")], found

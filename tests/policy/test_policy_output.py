"""`archiver validate` output formats, exit codes, and reporting every error in one pass."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from archiver.cli import cli
from archiver.errors import EXIT_CONFIG

from ._texts import VALID, line_of
from .conftest import Writer

# Three independent mistakes, each on its own line.
SEVERAL = (
    VALID.replace("max_items: 200", "max_items: 0")
    .replace("on_active: pause_and_resume", "on_active: sometimes")
    .replace("timeout_seconds: 30", "timeout_secs: 30")
)


def test_every_error_of_a_file_is_reported_in_one_pass(write: Writer) -> None:
    path = write(SEVERAL)

    result = CliRunner().invoke(cli, ["validate", str(path)])

    assert result.exit_code == EXIT_CONFIG
    lines = result.output.splitlines()
    assert lines[:3] == [
        f"{path}:{line_of(SEVERAL, 'timeout_secs')}:3: S001 unknown key `timeout_secs`; "
        "did you mean `timeout_seconds`?",
        f"{path}:{line_of(SEVERAL, 'sometimes')}:16: S004 `campaigns[0].on_active` is "
        "`sometimes`; expected one of: pause_and_resume, skip, fail",
        f"{path}:{line_of(SEVERAL, 'max_items')}:14: S005 `batch.max_items` is 0; "
        "the minimum is 1",
    ]
    assert lines[3] == "3 errors in 1 of 1 policy"


def test_github_format_is_workflow_commands(write: Writer) -> None:
    path = write(SEVERAL)

    result = CliRunner().invoke(cli, ["validate", "--format", "github", str(path)])

    assert result.exit_code == EXIT_CONFIG
    commands = [line for line in result.output.splitlines() if line.startswith("::")]
    assert len(commands) == 3
    for line in commands:
        assert re.match(r"^::error file=[^,]+,line=\d+,col=\d+::", line), line
    assert f"line={line_of(SEVERAL, 'max_items')},col=14::S005 " in commands[2]


def test_github_format_escapes_what_would_end_a_property(tmp_path) -> None:
    odd = tmp_path / "a,b:c.yaml"
    odd.write_text("version: 2\n")

    result = CliRunner().invoke(cli, ["validate", "--format", "github", str(odd)])

    first = result.output.splitlines()[0]
    assert re.match(r"^::error file=[^,]+,line=\d+,col=\d+::", first), first
    assert "a%2Cb%3Ac.yaml" in first


def test_json_format_is_a_list_of_diagnostics(write: Writer) -> None:
    path = write(SEVERAL)

    result = CliRunner().invoke(cli, ["validate", "--format", "json", str(path)])

    assert result.exit_code == EXIT_CONFIG
    found = json.loads(result.output)
    assert [d["code"] for d in found] == ["S001", "S004", "S005"]
    assert found[2] == {
        "file": str(path),
        "line": line_of(SEVERAL, "max_items"),
        "col": 14,
        "code": "S005",
        "message": "`batch.max_items` is 0; the minimum is 1",
    }


def test_json_format_of_valid_policies_is_an_empty_list(write: Writer) -> None:
    result = CliRunner().invoke(cli, ["validate", "--format", "json", str(write())])

    assert result.exit_code == 0
    assert json.loads(result.output) == []


def test_valid_and_invalid_files_together_exit_78_and_name_only_the_bad(write: Writer) -> None:
    good = write(name="good.yaml")
    bad = write(VALID.replace("version: 1", "version: 2"), name="bad.yaml")

    result = CliRunner().invoke(cli, ["validate", str(good), str(bad)])

    assert result.exit_code == EXIT_CONFIG
    assert result.output.splitlines() == [
        f"{bad}:1:10: S004 `version` must be 1, not `2`",
        "1 error in 1 of 2 policies",
    ]


def test_folder_skips_policy_tests_and_counts_policies(write: Writer) -> None:
    path = write(name="one.yaml")
    write(name="two.yml")
    (path.parent / "one.test.yaml").write_text("cases: [not, a, policy]\n")

    result = CliRunner().invoke(cli, ["validate", str(path.parent)])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "2 policies valid"


def test_empty_folder_is_an_error_not_a_silent_pass(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["validate", str(tmp_path)])

    assert result.exit_code == EXIT_CONFIG
    assert result.output.startswith(f"{tmp_path}:1:1: P007 ")


def test_missing_file_is_reported_like_any_other_problem(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "nope.yaml")])

    assert result.exit_code == EXIT_CONFIG
    assert result.output.startswith(f"{tmp_path / 'nope.yaml'}:1:1: P002 no such file")


def test_ctrl_c_in_a_command_exits_130_not_1(monkeypatch, tmp_path):
    from archiver.cli import cli
    from archiver.commands import schema

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(schema.command, "callback", interrupted)
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 130
    assert "archiver: interrupted" in result.output


# A key and a value with a newline, a terminal title escape (OSC ... BEL) and a CSI.
HOSTILE = VALID.replace("  max_items: 200", '  "max\\e]0;pwn\\aitems\\nx.yaml:1:1: OK": 200').replace(
    "version: 1", 'version: "1\\e[2J\\n"'
)


def test_text_a_policy_carries_cannot_break_or_drive_the_error_lines(write: Writer) -> None:
    path = write(HOSTILE)

    for args in (["validate"], ["validate", "--format", "github"], ["run", "--state", "st"]):
        result = CliRunner().invoke(cli, [*args, str(path)])

        assert result.exit_code == EXIT_CONFIG, result.output
        assert not any(ch in result.output for ch in "\x1b\x07"), (args, result.output)
        # One line per diagnostic: the newline in the key is shown, not obeyed.
        problems = [line for line in result.output.splitlines() if "S00" in line]
        assert len(problems) == 2, (args, result.output)
        assert all(str(path) in line for line in problems), (args, result.output)
        assert "\\x1b]0;pwn\\x07items" in result.output, args

"""`archiver --help` lists every verb as the verb's own help says, without loading any."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from archiver.cli import SUMMARIES, VERBS, cli


@pytest.mark.parametrize("verb", VERBS)
def test_each_verbs_summary_is_the_first_sentence_of_its_own_help(verb):
    command = importlib.import_module(f"archiver.commands.{verb}").command
    assert SUMMARIES[verb] == command.get_short_help_str(limit=1000)


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_verbs_are_listed_as_click_itself_lists_them(width):
    def listing(format_commands) -> str:
        ctx = click.Context(cli, info_name="archiver", terminal_width=width, max_content_width=width)
        formatter = ctx.make_formatter()
        format_commands(ctx, formatter)
        return formatter.getvalue()

    ours = listing(cli.format_commands)
    assert ours == listing(lambda ctx, f: click.Group.format_commands(cli, ctx, f))
    assert all(f"  {verb} " in ours for verb in VERBS)


def test_help_loads_no_verb():
    code = (
        "import sys\n"
        "from archiver.cli import cli\n"
        "try:\n"
        "    cli.main(['--help'], prog_name='archiver')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('archiver.commands.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Commands:" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1] == "[]"


# Options a sub-command takes from its verb's form in the README's Commands table
# (`archiver runs [--state DIR|URL | --policy FILE]` stands for runs show, outbox, prune).
_FROM_THE_VERBS_FORM = {"--state", "--policy"}


def _readme_forms() -> dict[tuple[str, ...], set[str]]:
    """Command path -> the long options the README's Commands table shows for it."""
    import re

    from tests.support import REPO

    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Commands"):].split("\n\n", 2)[1]
    forms: dict[tuple[str, ...], set[str]] = {}
    for snippet in re.findall(r"`(archiver [^`]*)`", table):
        if snippet.rstrip().endswith("..."):
            continue  # a form that says it lists only some options
        words = snippet.split()[1:]
        path: list[str] = []
        for word in words:
            if not re.fullmatch(r"[a-z]+", word):
                break
            path.append(word)
        forms.setdefault(tuple(path), set()).update(
            re.findall(r"(?<![\w-])--?[a-z][a-z-]*", snippet)
        )
    return forms


def _command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = importlib.import_module(f"archiver.commands.{path[0]}").command
    for name in path[1:]:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    if path == ("evidence",):  # `archiver evidence RUN_ID --out FILE`
        command = importlib.import_module("archiver.commands.evidence").create
    return command


def test_the_readmes_commands_table_shows_every_option_help_does():
    forms = _readme_forms()
    assert ("runs", "prune") in forms and ("evidence", "verify") in forms
    for path, shown in forms.items():
        missing = [
            param.opts[0] for param in _command_at(path).params
            if isinstance(param, click.Option) and not set(param.opts) & shown
            and not (len(path) > 1 and set(param.opts) & _FROM_THE_VERBS_FORM)
        ]
        assert missing == [], f"archiver {' '.join(path)}: not in README's Commands table"


@pytest.mark.parametrize("args", [
    ["run", ""],
    ["run", "p.yaml", "--state", ""],
    ["run", "p.yaml", "--report", ""],
    ["run", "p.yaml", "--metrics", ""],
    ["validate", ""],
    ["test", ""],
    ["plan", ""],
    ["diff", "", "p.yaml"],
    ["diff", "p.yaml", ""],
    ["diff", "p.yaml", "p.yaml", "--fixtures", ""],
    ["approve", ""],
    ["approve", "p.yaml", "--sign-with", ""],
    ["audit", "verify", ""],
    ["audit", "verify", "a.jsonl", "--state", ""],
    ["evidence", "r1", "--out", ""],
    ["evidence", "verify", "--public-key", "", "b.json"],
    ["runs", "--state", ""],
    ["runs", "--policy", ""],
    ["runs", "show", "r1", "--state", ""],
])
def test_an_empty_path_is_a_usage_error_not_the_current_folder(args, tmp_path, monkeypatch):
    # Path("") is ".": `archiver run "$POLICY"` with the variable unset ran every policy
    # under the working folder, `--state ""` kept the state store in it, `--report ""`
    # failed with a traceback after the run.
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "an empty string names no file or folder" in result.output
    assert os.listdir(tmp_path) == []


_TOO_LONG = "p" * 300  # one name past every common file system's 255-byte limit


@pytest.mark.parametrize("args", [
    ["validate", _TOO_LONG],
    ["test", _TOO_LONG],
    ["plan", f"{_TOO_LONG}/p.yaml"],
    ["diff", _TOO_LONG, "p.yaml"],
    ["audit", "verify", _TOO_LONG],
    ["audit", "verify", "a.jsonl", "--state", _TOO_LONG],
    ["runs", "--state", _TOO_LONG],
    ["runs", "outbox", "--state", f"{_TOO_LONG}/x"],
    ["evidence", "r1", "--out", "b.json", "--state", _TOO_LONG],
    ["run", "p.yaml", "--state", _TOO_LONG],
])
def test_a_path_with_a_name_too_long_is_a_usage_error_not_a_traceback(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "is longer than the system allows; shorten it" in result.output


def test_a_test_path_in_a_loop_of_links_is_reported_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    result = CliRunner().invoke(cli, ["test", "a"])
    assert result.exit_code == 1, (result.output, result.exception)
    assert "a:1:1: F001 cannot read:" in result.output


_NOT_UTF8 = b"r\xff\xfe".decode("utf-8", "surrogateescape")  # as Python decodes such an argument


@pytest.mark.parametrize("args", [
    ["runs", "show", _NOT_UTF8],
    ["evidence", _NOT_UTF8, "--out", "b.json"],
    ["runs", "outbox", "--drop", _NOT_UTF8],
    ["run", "p.yaml", "--campaign", _NOT_UTF8],
    ["approve", "p.yaml", "--by", _NOT_UTF8],
])
def test_an_id_that_is_not_utf8_text_is_a_usage_error_not_a_traceback(args, tmp_path, monkeypatch):
    # A run or sink id was looked up as it came: UnicodeEncodeError in the query; an
    # approver was written into POLICY.approved as lone surrogates.
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "is not UTF-8 text" in result.output


@pytest.mark.parametrize("who", ["", "  "])
def test_an_empty_approver_is_refused_not_replaced_by_gits_email(who, tmp_path, monkeypatch):
    # `--by "$APPROVER"` with the variable unset recorded git's user.email as the approver.
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["approve", "p.yaml", "--by", who])
    assert result.exit_code == 2, (result.output, result.exception)
    assert "is empty: name who approves" in result.output


@pytest.mark.parametrize("args", [
    ["run", "p.yaml", "--report", "p.yaml/"],
    ["run", "p.yaml", "--metrics", "reports/"],
    ["evidence", "r1", "--out", "p.yaml/"],
    ["plan", "p.yaml/"],
    ["diff", "p.yaml", "p.yaml", "--fixtures", "f.yaml/"],
    ["diff", "p.yaml/", "p.yaml"],
    ["diff", "p.yaml", "p.yaml/"],
])
def test_a_file_path_ending_in_a_slash_is_a_usage_error_not_the_file_before_it(
    args, tmp_path, monkeypatch
):
    # pathlib drops a trailing slash: `--report p.yaml/` wrote the report over p.yaml.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text("kept\n")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "ends in /, which names a folder; give a file's name" in result.output
    assert (tmp_path / "p.yaml").read_text() == "kept\n"
    assert sorted(os.listdir(tmp_path)) == ["p.yaml"]


@pytest.fixture
def pipe(tmp_path: Path) -> Iterator[Path]:
    """A named pipe nothing writes to. A command that opens it to read waits for a writer:
    after 10 s one comes (and goes at once, an end of file), so the test fails, not hangs."""
    path = tmp_path / "pipe"
    os.mkfifo(path)
    done = threading.Event()

    def writer() -> None:
        while not done.wait(10):
            os.close(os.open(path, os.O_RDWR | os.O_NONBLOCK))  # never waits itself

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    yield path
    done.set()
    thread.join()


@pytest.mark.parametrize("args", [
    ["validate", "pipe"],
    ["run", "pipe"],
    ["run", "p.yaml", "pipe"],
    ["test", "pipe"],
    ["plan", "pipe"],
    ["plan", "link"],
    ["diff", "pipe", "p.yaml"],
    ["diff", "p.yaml", "pipe"],
    ["diff", "p.yaml", "p.yaml", "--fixtures", "pipe"],
    ["approve", "pipe"],
    ["approve", "p.yaml", "--sign-with", "pipe"],
    ["approve", "p.yaml", "--check", "--allowed-signers", "pipe"],
    ["audit", "verify", "pipe"],
    ["audit", "verify", "a.jsonl", "--public-key", "pipe"],
    ["evidence", "verify", "pipe", "--public-key", "k.pem"],
    ["evidence", "verify", "b.json", "--public-key", "pipe"],
    ["evidence", "r1", "--out", "b.json", "--policy", "pipe"],
    ["runs", "--policy", "pipe"],
    ["runs", "show", "r1", "--policy", "pipe"],
    ["runs", "outbox", "--policy", "pipe"],
    ["runs", "prune", "--older-than", "90d", "--policy", "pipe"],
])
def test_a_named_pipe_to_read_is_a_usage_error_not_a_wait_for_a_writer(
    args, pipe, tmp_path, monkeypatch
):
    # `archiver validate FIFO` (every command reading a policy, a key, a log, a bundle)
    # opened the pipe and waited for a writer, for ever.
    monkeypatch.chdir(tmp_path)
    for name in ("p.yaml", "a.jsonl", "b.json", "k.pem"):
        (tmp_path / name).write_text("x\n")
    os.symlink("pipe", tmp_path / "link")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, (result.output, result.exception)
    named = "link" if "link" in args else "pipe"
    assert f"{named!r} is a named pipe (FIFO), not a regular file" in result.output


def test_a_named_pipe_in_an_option_s_variable_is_a_usage_error_too(pipe, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text("x\n")
    result = CliRunner().invoke(cli, ["approve", "p.yaml", "--check"],
                                env={"ARCHIVER_ALLOWED_SIGNERS": str(pipe)})
    assert result.exit_code == 2, (result.output, result.exception)
    assert "is a named pipe (FIFO), not a regular file" in result.output


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
@pytest.mark.parametrize("verb", ["validate", "plan"])
def test_a_device_to_read_is_a_usage_error(verb):
    result = CliRunner().invoke(cli, [verb, "/dev/null"])
    assert result.exit_code == 2, (result.output, result.exception)
    assert "'/dev/null' is a character device, not a regular file" in result.output

"""`archiver --help` lists every verb as the verb's own help says, without loading any."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
import pytest

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

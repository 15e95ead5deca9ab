"""README's Commands table and ``--help`` stay in step: every command has a row, and every
option a row names is one its commands take (``tests/test_cli.py`` checks the other way:
every option a form takes is shown)."""

from __future__ import annotations

import re

import click

from archiver.cli import cli
from tests.support import REPO


def commands() -> list[tuple[str, click.Command]]:
    """Every leaf command, as ``name sub`` (``run``, ``runs prune``), and the groups that
    take options of their own (``runs``)."""
    found: list[tuple[str, click.Command]] = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        if path:
            found.append((" ".join(path), cmd))
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None
                walk(sub, [*path, name])
            # A group that takes an argument in place of a command (`evidence RUN_ID`)
            # resolves it to a command of its own, unlisted.
            try:
                _, sub, _ = cmd.resolve_command(ctx, ["AN-ARGUMENT"])
            except click.UsageError:
                sub = None
            if sub is not None and sub.name is not None:
                found.append((" ".join([*path, sub.name]), sub))

    walk(cli, [])
    return found


def command_names(top: str) -> set[str]:
    """The names ``archiver TOP --help`` lists (a resolved argument form is not one)."""
    group = cli.get_command(click.Context(cli), top)
    names = {top}
    if isinstance(group, click.Group):
        names.update(group.list_commands(click.Context(group)))
    return names


def options(cmd: click.Command) -> list[tuple[str, ...]]:
    """Each option's spellings (``("--verbose", "-v")``), --help aside."""
    return [
        (*param.opts, *param.secondary_opts) for param in cmd.params
        if isinstance(param, click.Option) and not param.hidden and "--help" not in param.opts
    ]


def command_rows() -> dict[str, str]:
    """The first cell of each row of README's Commands table, by the top-level command."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text.split("## Commands", 1)[1].split("\n\n", 2)[1]
    rows: dict[str, str] = {}
    for line in table.splitlines():
        cell = re.match(r"\| (`archiver .*?`(?:, `archiver .*?`)*) \|", line)
        if cell:
            top = re.match(r"`archiver (\w+)", cell.group(1))
            assert top is not None
            rows[top.group(1)] = cell.group(1)
    return rows


def test_the_table_has_a_row_for_every_command():
    tops = {name.split()[0] for name, _ in commands()}
    assert set(command_rows()) == tops


def test_every_command_help_lists_is_shown_in_its_row():
    rows = command_rows()
    for name, _ in commands():
        top = name.split()[0]
        if name.split()[-1] in command_names(top):
            assert f"archiver {name}" in rows[top], f"README's row for {top} lacks `archiver {name}`"


def test_every_option_a_row_names_is_one_its_commands_take():
    taken: dict[str, set[str]] = {}
    for name, cmd in commands():
        taken.setdefault(name.split()[0], set()).update(
            s for spellings in options(cmd) for s in spellings)
    for top, row in command_rows().items():
        shown = set(re.findall(r"(?<![\w-])--?[a-z][a-z-]*", row))
        unknown = shown - taken[top]
        assert not unknown, f"README's row for {top} names {sorted(unknown)}, which it does not take"

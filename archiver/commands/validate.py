"""``archiver validate PATH...``: check policies without secrets or network, for CI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import click

from archiver.commands._paths import PathParam
from archiver.errors import EXIT_CONFIG, Diagnostic
from archiver.policy import check_paths
from archiver.report.redact import printable

FORMATS = ("text", "json", "github")


@click.command("validate")
@click.argument("paths", nargs=-1, required=True, type=PathParam(reads=True, path_type=Path))
@click.option(
    "--format", "output_format", type=click.Choice(FORMATS), default="text", show_default=True,
    help="text: file:line:col: CODE message; json: a list of objects; github: workflow commands.",
)
@click.pass_context
def command(ctx: click.Context, paths: tuple[Path, ...], output_format: str) -> None:
    """Check policies (files, or folders of *.yaml and *.yml) against the schema and the semantic rules.

    A folder is searched with its sub-folders, as `archiver test` searches it; hidden
    folders (.git, .archiver) and test files (*.test.yaml) are left out. Needs no
    secrets and makes no requests. Exit 0 when every policy is valid, 78 otherwise.
    """
    results = check_paths(paths)
    diagnostics = [d for found in results.values() for d in found]
    if output_format == "json":
        click.echo(json.dumps([_as_dict(d) for d in diagnostics], indent=2))
    elif output_format == "github":
        for d in diagnostics:
            click.echo(_github(d))
    else:
        for d in diagnostics:
            click.echo(d.format())
    if output_format != "json":
        click.echo(_summary(results, diagnostics))
    if diagnostics:
        ctx.exit(EXIT_CONFIG)


def _summary(results: dict[Path, list[Diagnostic]], diagnostics: Sequence[Diagnostic]) -> str:
    checked = len(results)
    if not diagnostics:
        return f"{checked} {'policy' if checked == 1 else 'policies'} valid"
    bad = sum(1 for found in results.values() if found)
    errors = len(diagnostics)
    return (f"{errors} {'error' if errors == 1 else 'errors'} in {bad} of {checked} "
            f"{'policy' if checked == 1 else 'policies'}")


def _as_dict(d: Diagnostic) -> dict[str, object]:
    return {"file": d.file, "line": d.line, "col": d.col, "code": d.code, "message": d.message}


def _github(d: Diagnostic) -> str:
    # Escaping as GitHub's workflow-command parser expects (toolkit's escapeData/escapeProperty).
    # Line breaks are escaped for GitHub; other control characters as in text output.
    def data(s: str) -> str:
        s = s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return printable(s)

    def prop(s: str) -> str:
        return data(s).replace(":", "%3A").replace(",", "%2C")

    return f"::error file={prop(d.file)},line={d.line},col={d.col}::{data(d.code + ' ' + d.message)}"

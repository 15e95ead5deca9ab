"""`archiver audit`: inspect the tamper-evident audit log."""

from __future__ import annotations

import json
from pathlib import Path

import click

from archiver.audit import verify_file
from archiver.errors import EXIT_FAILED, UsageError


@click.group(name="audit")
def command() -> None:
    """Inspect the audit log a policy's `audit_log` sink writes.

    Each line of the log is a JSON record chained to the line before it by a
    SHA-256 hash, so edited, deleted, inserted or reordered lines show up.
    """


@command.command(name="verify")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one line, `FILE:LINE: message` when broken; json: one object for scripts.",
)
def verify(file: Path, fmt: str) -> None:
    """Check the hash chain of the audit log FILE and name the first broken line.

    Reads the file line by line without changing it. Exit 0 when every line
    is intact and follows the one before, 1 when the chain is broken (edited,
    deleted, inserted or reordered lines, or a torn last line), 2 when FILE
    does not exist.

    Lines cut off the end of the log cannot be detected from the file alone:
    compare the last seq and hash printed here with a copy kept elsewhere.
    """
    if not file.exists():
        raise UsageError(f"{file}: no such audit log")
    if not file.is_file():
        raise UsageError(f"{file}: not a file")
    try:
        result = verify_file(file)
    except OSError as err:
        raise UsageError(f"{file}: cannot read: {err.strerror}") from err
    if fmt == "json":
        payload = {
            "file": str(file),
            "ok": result.ok,
            "lines": result.lines,
            "first_bad_line": result.first_bad_line,
            "message": result.message,
        }
        click.echo(json.dumps(payload))
    elif result.ok:
        click.echo(f"{file}: OK, {result.message}")
    else:
        click.echo(f"{file}:{result.first_bad_line}: {result.message}")
    if not result.ok:
        raise click.exceptions.Exit(EXIT_FAILED)

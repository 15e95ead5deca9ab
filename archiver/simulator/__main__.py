"""``python -m archiver.simulator``: the same options as ``archiver simulate``."""

from __future__ import annotations

import sys

import click

from archiver.commands.simulate import command
from archiver.errors import ArchiverError


def main() -> None:
    try:
        command(prog_name="python -m archiver.simulator")
    except ArchiverError as err:
        click.echo(f"simulator: error: {err}", err=True)
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()

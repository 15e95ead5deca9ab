"""``python -m archiver.simulator.cxone``: the cxone personality on its own."""

from __future__ import annotations

import sys

import click

from archiver.errors import ArchiverError
from archiver.simulator.cxone.cli import command


def main() -> None:
    try:
        command(prog_name="python -m archiver.simulator.cxone")
    except ArchiverError as err:
        click.echo(f"simulator: error: {err}", err=True)
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()

"""Paths on the command line, as every command takes them.

An empty argument names no file: ``Path("")`` is the current folder, so ``archiver run
"$POLICY"`` with the variable unset would run every policy under the working folder, and
``--report ""`` would try to write over it. It is refused as a usage error instead.
"""

from __future__ import annotations

from typing import Any

import click

EMPTY = "an empty string names no file or folder (is the variable meant to give it unset?)"


def refuse_empty(value: str, param: click.Parameter | None, ctx: click.Context | None) -> None:
    """A usage error (exit 2) naming ``param`` when ``value`` is the empty string."""
    if value == "":
        raise click.BadParameter(EMPTY, ctx=ctx, param=param)


class PathParam(click.Path):
    """``click.Path`` that refuses an empty value."""

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Any:
        if isinstance(value, str | bytes) and not value:
            self.fail(EMPTY, param, ctx)
        return super().convert(value, param, ctx)

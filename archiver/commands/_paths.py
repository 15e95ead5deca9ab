"""Paths on the command line, as every command takes them.

An empty argument names no file: ``Path("")`` is the current folder, so ``archiver run
"$POLICY"`` with the variable unset would run every policy under the working folder, and
``--report ""`` would try to write over it. It is refused as a usage error instead, as
is a path the system cannot look up at all (a name longer than its file system allows).
"""

from __future__ import annotations

import errno
import os
from typing import Any

import click

EMPTY = "an empty string names no file or folder (is the variable meant to give it unset?)"


def refuse_unusable(
    value: str, param: click.Parameter | None, ctx: click.Context | None, *, file: bool = False
) -> None:
    """A usage error (exit 2) naming ``param`` when :func:`path_problem` finds one."""
    problem = path_problem(value, file=file)
    if problem:
        raise click.BadParameter(problem, ctx=ctx, param=param)


def path_problem(path: str | bytes, *, file: bool = False) -> str | None:
    """Why ``path`` cannot be used, else None: it is empty, or no file can have it; where
    a ``file`` is asked for, it ends in ``/``. Whether a folder will do where a file is
    asked for is the caller's to say."""
    if not path:
        return EMPTY
    problem = unusable(path)
    if problem:
        return problem
    shown = os.fsdecode(path)
    if file and shown.endswith("/"):
        # pathlib drops the slash: `--report out.json/` would write over out.json,
        # `--report reports/` make a file named reports.
        return f"{shown!r} ends in /, which names a folder; give a file's name"
    return None


def unusable(path: str | bytes | os.PathLike[str]) -> str | None:
    """Why no file can have the path ``path`` (one of its names, or the whole, is longer
    than the system allows), else None: every later look at it would fail the same way."""
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            return f"{err.strerror}: a name in the path, or the whole path, is longer than the system allows; shorten it"
    except ValueError:
        return None  # a NUL byte: cannot come from a command line
    return None


class PathParam(click.Path):
    """``click.Path`` that refuses an empty value, a path no file can have and, where a
    file is asked for, a path ending in ``/``."""

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Any:
        if isinstance(value, str | bytes):
            problem = path_problem(value, file=not self.dir_okay)
            if problem:
                self.fail(problem, param, ctx)
        return super().convert(value, param, ctx)

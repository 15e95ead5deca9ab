"""Paths on the command line, as every command takes them.

An empty argument names no file: ``Path("")`` is the current folder, so ``archiver run
"$POLICY"`` with the variable unset would run every policy under the working folder, and
``--report ""`` would try to write over it. It is refused as a usage error instead, as
is a path the system cannot look up at all (a name longer than its file system allows).

A path a command reads must name a regular file (or a folder, where the command takes
one): opening a named pipe to read it waits for a writer that may never come, and a
device has no end. Anything else is refused from what ``stat`` says, before it is
opened. A path a command writes is not checked so: a report or metrics file written to
a device or a pipe is written in place (:func:`archiver.state.files.write_output`).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

import click

from archiver.regular_file import kind

EMPTY = "an empty string names no file or folder (is the variable meant to give it unset?)"

def refuse_unusable(
    value: str, param: click.Parameter | None, ctx: click.Context | None, *,
    file: bool = False, reads: bool = False,
) -> None:
    """A usage error (exit 2) naming ``param`` when :func:`path_problem` finds one."""
    problem = path_problem(value, file=file, reads=reads)
    if problem:
        raise click.BadParameter(problem, ctx=ctx, param=param)


def path_problem(path: str | bytes, *, file: bool = False, reads: bool = False) -> str | None:
    """Why ``path`` cannot be used, else None: it is empty, or no file can have it; where
    a ``file`` is asked for, it ends in ``/``; where the command ``reads`` it, it is there
    and is neither a regular file nor a folder (a named pipe, a device, a socket). Whether
    a folder will do where a file is asked for is the caller's to say."""
    if not path:
        return EMPTY
    mode, problem = _look(path)
    if problem:
        return problem
    shown = os.fsdecode(path)
    if file and shown.endswith("/"):
        # pathlib drops the slash: `--report out.json/` would write over out.json,
        # `--report reports/` make a file named reports.
        return f"{shown!r} ends in /, which names a folder; give a file's name"
    if reads and mode is not None and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        wanted = "a regular file" if file else "a regular file or a folder"
        return f"{shown!r} is {kind(mode)}, not {wanted}"
    return None


def unusable(path: str | bytes | os.PathLike[str]) -> str | None:
    """Why no file can have the path ``path`` (one of its names, or the whole, is longer
    than the system allows), else None: every later look at it would fail the same way."""
    return _look(path)[1]


def _look(path: str | bytes | os.PathLike[str]) -> tuple[int | None, str | None]:
    """The ``st_mode`` of what ``path`` names (None when nothing can be found there), and
    why no file can have that path, if none can."""
    try:
        return os.stat(path).st_mode, None
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            return None, (f"{err.strerror}: a name in the path, or the whole path, is longer "
                          "than the system allows; shorten it")
        return None, None
    except ValueError:
        return None, None  # a NUL byte: cannot come from a command line


class PathParam(click.Path):
    """``click.Path`` that refuses an empty value, a path no file can have and, where a
    file is asked for, a path ending in ``/``. ``reads`` says whether the command reads
    the path (an input: it must be a regular file, or a folder where ``dir_okay``) or
    writes it (an output: a device or a pipe there is written in place); every path
    option says which."""

    def __init__(self, *, reads: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reads = reads

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Any:
        if isinstance(value, str | bytes):
            problem = path_problem(value, file=not self.dir_okay, reads=self.reads)
            if problem:
                self.fail(problem, param, ctx)
        return super().convert(value, param, ctx)

"""Text on the command line that archiver stores or looks up (a run id, a sink id, a
campaign id, an approver): it must be UTF-8 text.

Arguments arrive as bytes; Python keeps the bytes that are not UTF-8 as lone surrogates,
which no UTF-8 database, file or hash takes. Such an argument is refused as a usage
error (exit 2) naming the parameter, instead of failing inside a query or a write.
"""

from __future__ import annotations

import click

from archiver.commands._params import ParamType
from archiver.report.redact import is_utf8

NOT_UTF8 = "is not UTF-8 text (it holds bytes no UTF-8 text has); type it again in UTF-8"
EMPTY_ID = "is empty: give a run id (see `archiver runs`); is the variable meant to give it unset?"


class TextParam(ParamType[str]):
    name = "text"

    def __init__(self, *, empty_ok: bool = True) -> None:
        self.empty_ok = empty_ok

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        text = str(value)
        if not is_utf8(text):
            self.fail(NOT_UTF8, param, ctx)
        if not self.empty_ok and not text.strip():
            self.fail(EMPTY_ID, param, ctx)
        return text


TEXT = TextParam()
# A run id, matched as a prefix: empty would match every run, and pick the only one.
RUN_ID = TextParam(empty_ok=False)

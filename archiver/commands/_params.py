"""click's ``ParamType`` for the command line's own parameter types, subscripted with
what it converts to (``ParamType[str]``) on every click the project allows: click 8.2
made it generic; before, subscripting it fails, so at run time the subscript is only
for the type checker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from click import ParamType as ParamType
else:

    class ParamType(click.ParamType):
        def __class_getitem__(cls, item: Any) -> type:
            return cls

"""Find the template file and line an exception raised while rendering came from."""

from __future__ import annotations

from types import TracebackType


def template_frame(exc: BaseException) -> tuple[str, int] | None:
    """``(template filename, line)`` of the innermost template frame of ``exc``, if any.

    Jinja rewrites the traceback of a render error so that frames of template code carry
    the template's filename and line. Those frames are built by ``jinja2.debug`` and are
    recognisable by the ``__jinja_exception__`` global it plants in them. The innermost one
    is where the error happened (inside an included template, if it was one).
    """
    found: tuple[str, int] | None = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        if "__jinja_exception__" in tb.tb_frame.f_globals:
            found = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found

"""Compile a payload template once, render it to JSON many times, each render bounded.

Error messages name the template file and line and quote only template source or a
short excerpt of the rendered output; never more than MAX_MESSAGE characters.
"""

from __future__ import annotations

import stat
from collections.abc import Generator, Mapping
from contextlib import closing
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from jinja2 import Template, TemplateNotFound, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError

from archiver.errors import TemplateError
from archiver.regular_file import not_regular
from archiver.templates import bounds
from archiver.templates.loader import TemplateRefused, locate
from archiver.templates.locate import template_frame
from archiver.templates.output import NotPlainJson, plain_json
from archiver.templates.sandbox import environment

DEFAULT_AUDIT = "audit.json.j2"
DEFAULT_WEBHOOK = "webhook.json.j2"
DEFAULTS_DIR = Path(__file__).with_name("defaults")

MAX_MESSAGE = 300


class CompiledTemplate:
    """A template that compiled; :meth:`render_json` turns a context into a JSON value."""

    def __init__(self, name: str, template: Template) -> None:
        self.name = name
        self._template = template

    def __repr__(self) -> str:
        return f"CompiledTemplate({self.name!r})"

    def render_json(self, context: Mapping[str, Any]) -> Any:
        """Render with ``context`` and parse the result as JSON.

        The render is held to :mod:`archiver.templates.bounds` (time, loop iterations,
        output size); its output must be JSON that strict parsers accept
        (:func:`archiver.templates.output.plain_json`: no NaN or Infinity, no lone
        surrogate, at most MAX_JSON_DEPTH levels of nesting). Every failure becomes a
        :class:`TemplateError` naming the template file and, when the error happened in
        template code, its line.
        """
        try:
            text = self._render(context)
        except TemplateSyntaxError as err:  # in an included template, loaded only now
            raise TemplateError(err.filename or self.name, err.lineno, _syntax(err)) from err
        except TemplateRefused as err:
            raise self._error(err, str(err)) from None
        except SecurityError as err:
            raise self._error(err, f"refused by the sandbox: {err}") from err
        except UndefinedError as err:
            raise self._error(err, f"undefined: {err}") from err
        except TemplateNotFound as err:
            raise self._error(err, f"cannot include {err.name!r}: no such template") from err
        except bounds.BoundExceeded as err:
            raise self._error(err, str(err)) from None
        except RecursionError as err:
            raise self._error(err, "stopped at the recursion bound: a macro or a recursive "
                              "loop calls itself too deeply") from None
        except MemoryError as err:
            raise self._error(err, "ran out of memory") from None
        except Exception as err:
            raise self._error(err, f"{type(err).__name__}: {err}") from err
        try:
            return plain_json(text)
        except NotPlainJson as err:
            raise TemplateError(self.name, None, _short(str(err))) from None

    def _render(self, context: Mapping[str, Any]) -> str:
        """The output, streamed so that its size is checked as it grows."""
        parts: list[str] = []
        size = 0
        stream = cast(Generator[str, None, None], self._template.generate(dict(context)))
        with bounds.render_budget(), closing(stream) as out:
            for part in out:
                size += len(part)
                bounds.check_output(size)
                bounds.tick()
                parts.append(part)
        return "".join(parts)

    def _error(self, err: BaseException, message: str) -> TemplateError:
        frame = template_frame(err)
        if frame is None:
            return TemplateError(self.name, None, _short(message))
        filename, line = frame
        # Errors inside an included template name that file; ours keeps the caller's spelling.
        shown = self.name if filename == self._template.filename else filename
        return TemplateError(shown, line, _short(message))


def compile_template(path: Path, *, root: Path | None = None) -> CompiledTemplate:
    """Compile the template at ``path``; the result is cached until the file changes.

    Only ``*.j2`` files inside ``root`` are read, this one and every one it includes,
    imports or extends (symlinks followed; :mod:`archiver.templates.loader`). ``root`` is
    the policy's repository; without it, the template's own folder.
    """
    folder = path.absolute().parent
    boundary = (root if root is not None else folder).resolve()
    try:
        locate(boundary, folder, path.name)
    except TemplateRefused as refused:
        raise TemplateError(str(path), None, f"not loaded: {refused.reason}") from None
    try:
        info = path.stat()
    except FileNotFoundError:
        raise TemplateError(str(path), None, "template file not found") from None
    except OSError as err:
        raise TemplateError(str(path), None, f"cannot read template: {err.strerror}") from err
    if not stat.S_ISREG(info.st_mode):
        raise TemplateError(str(path), None, not_regular(info.st_mode))
    return _compile(str(path), folder, path.name, boundary, info.st_mtime_ns, info.st_size)


def load_template(path: Path | None, default: str, *, root: Path | None = None) -> CompiledTemplate:
    """The template at ``path``, or the packaged ``default`` (e.g. DEFAULT_AUDIT) when None.

    ``root`` is the repository of the policy naming the template (``Policy.root``): the
    template and all it includes are read only from inside it; without a root, only from
    the template's own folder.
    """
    if path is None:
        return compile_template(DEFAULTS_DIR / default)
    return compile_template(path, root=root)


# mtime and size are part of the key so an edited file is compiled again.
@lru_cache(maxsize=128)
def _compile(
    name: str, folder: Path, filename: str, root: Path, _mtime_ns: int, _size: int
) -> CompiledTemplate:
    env = environment(folder, root)
    try:
        template = env.get_template(filename)
    except TemplateSyntaxError as err:
        raise TemplateError(name, err.lineno, _syntax(err)) from err
    except TemplateNotFound as err:
        raise TemplateError(name, None, "template file not found") from err
    except TemplateRefused as refused:
        raise TemplateError(name, None, f"not loaded: {refused.reason}") from None
    except OSError as err:
        raise TemplateError(name, None, f"cannot read template: {err.strerror}") from err
    return CompiledTemplate(name, template)


def _syntax(err: TemplateSyntaxError) -> str:
    return _short(f"syntax error: {err.message}")


def _short(message: str) -> str:
    """At most MAX_MESSAGE characters of ``message``: an error quotes, it does not dump."""
    if len(message) <= MAX_MESSAGE:
        return message
    return message[: MAX_MESSAGE - 1] + "…"


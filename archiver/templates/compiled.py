"""Compile a payload template once, render it to JSON many times."""

from __future__ import annotations

import json
import stat
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Template, TemplateNotFound, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError

from archiver.errors import TemplateError
from archiver.templates.locate import template_frame
from archiver.templates.sandbox import environment

DEFAULT_AUDIT = "audit.json.j2"
DEFAULT_WEBHOOK = "webhook.json.j2"
DEFAULTS_DIR = Path(__file__).with_name("defaults")

_EXCERPT = 40


class CompiledTemplate:
    """A template that compiled; :meth:`render_json` turns a context into a JSON value."""

    def __init__(self, name: str, template: Template) -> None:
        self.name = name
        self._template = template

    def __repr__(self) -> str:
        return f"CompiledTemplate({self.name!r})"

    def render_json(self, context: Mapping[str, Any]) -> Any:
        """Render with ``context`` and parse the result as JSON.

        Every failure becomes a :class:`TemplateError` naming the template file and, when
        the error happened in template code, its line.
        """
        try:
            text = self._template.render(dict(context))
        except TemplateSyntaxError as err:  # in an included template, loaded only now
            raise TemplateError(err.filename or self.name, err.lineno, _syntax(err)) from err
        except SecurityError as err:
            raise self._error(err, f"refused by the sandbox: {err}") from err
        except UndefinedError as err:
            raise self._error(err, f"undefined: {err}") from err
        except TemplateNotFound as err:
            raise self._error(
                err, f"cannot include {err.name!r}: no such template in the template's folder"
            ) from err
        except Exception as err:
            raise self._error(err, f"{type(err).__name__}: {err}") from err
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise TemplateError(self.name, None, _bad_json(err)) from err

    def _error(self, err: BaseException, message: str) -> TemplateError:
        frame = template_frame(err)
        if frame is None:
            return TemplateError(self.name, None, message)
        filename, line = frame
        # Errors inside an included template name that file; ours keeps the caller's spelling.
        shown = self.name if filename == self._template.filename else filename
        return TemplateError(shown, line, message)


def compile_template(path: Path) -> CompiledTemplate:
    """Compile the template at ``path``; the result is cached until the file changes."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise TemplateError(str(path), None, "template file not found") from None
    except OSError as err:
        raise TemplateError(str(path), None, f"cannot read template: {err.strerror}") from err
    if not stat.S_ISREG(info.st_mode):
        raise TemplateError(str(path), None, "not a regular file")
    return _compile(str(path), str(path.absolute()), info.st_mtime_ns, info.st_size)


def load_template(path: Path | None, default: str) -> CompiledTemplate:
    """The template at ``path``, or the packaged ``default`` (e.g. DEFAULT_AUDIT) when None."""
    return compile_template(path if path is not None else DEFAULTS_DIR / default)


# mtime and size are part of the key so an edited file is compiled again.
@lru_cache(maxsize=128)
def _compile(name: str, absolute: str, _mtime_ns: int, _size: int) -> CompiledTemplate:
    location = Path(absolute)
    env = environment(str(location.parent))
    try:
        template = env.get_template(location.name)
    except TemplateSyntaxError as err:
        raise TemplateError(name, err.lineno, _syntax(err)) from err
    except TemplateNotFound as err:
        raise TemplateError(name, None, "template file not found") from err
    except UnicodeDecodeError as err:
        raise TemplateError(name, None, f"not UTF-8 text: {err.reason}") from err
    except OSError as err:
        raise TemplateError(name, None, f"cannot read template: {err.strerror}") from err
    return CompiledTemplate(name, template)


def _syntax(err: TemplateSyntaxError) -> str:
    return f"syntax error: {err.message}"


def _bad_json(err: json.JSONDecodeError) -> str:
    # json reports a position in the rendered output, which loops and conditionals shift
    # away from template lines; quote the output there so it can be found in the template.
    start = max(err.pos - _EXCERPT // 2, 0)
    excerpt = err.doc[start : err.pos + _EXCERPT // 2]
    return (
        f"rendered output is not valid JSON: {err.msg} at output line {err.lineno} "
        f"column {err.colno}, near {excerpt!r}"
    )

"""Step 3, templates: every template a sink names is a ``*.j2`` file inside the policy's
repository, exists, compiles, and renders sample events within the render bounds.

Where the template is, is the policy's business and is reported at its ``template:``
value; a template's own errors point at the template file and line, not at the policy:
that is the file the author has to edit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from archiver.errors import Diagnostic, TemplateError
from archiver.policy import _codes as codes
from archiver.policy._document import Document, JsonPath
from archiver.policy.model import Policy
from archiver.policy.paths import repository_root
from archiver.stages import registry
from archiver.stages.descriptor import StageType
from archiver.templates import compile_template
from archiver.templates.loader import template_problem


def check(policy: Policy, doc: Document) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    root = repository_root(doc.base_dir)
    for i, item, stage in registry.sinks_of(policy):
        written = stage.template(item.options)
        if written is not None:
            at: JsonPath = (("sinks", i, "template") if stage.inline
                            else ("sinks", i, "options", "template"))
            out.extend(_check_one(stage, item.options, written, at, doc, root))
    return out


def _check_one(
    stage: StageType, options: Any, written: str, at: JsonPath, doc: Document, root: Path
) -> Iterator[Diagnostic]:
    refused = template_problem(root, doc.base_dir, written)
    if refused is not None:
        yield doc.at_value(at, codes.TEMPLATE_NOT_ALLOWED,
                           f"template `{written}` is not allowed: {refused}; a template must "
                           "be a `*.j2` file inside the policy's repository")
        return
    path = doc.resolve(written)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        yield doc.at_value(at, codes.TEMPLATE_MISSING,
                           f"template `{doc.show(written)}` {what}")
        return
    used_by = doc.positions.value(at)
    where = f"(used by {doc.file}:{used_by.line})"
    try:
        template = compile_template(path, root=root)
    except TemplateError as err:
        yield _at_template(err, path, doc.show(written), codes.TEMPLATE_COMPILE,
                           f"template does not compile: {_message(err)} {where}")
        return
    problem = stage.sample_check(template, options)
    if problem is not None:
        failure, event = problem
        yield _at_template(failure, path, doc.show(written), codes.TEMPLATE_RENDER,
                           f"template fails on a sample `{event}` event: {_message(failure)} "
                           f"{where}")


def _message(err: TemplateError) -> str:
    """The error's own words, without the ``file:line:`` it is prefixed with."""
    prefix = f"{err.template}:{err.line}: " if err.line else f"{err.template}: "
    return str(err).removeprefix(prefix)


def _at_template(err: TemplateError, path: Path, shown: str, code: str, message: str) -> Diagnostic:
    # An error inside an included template names that file; show it relative to where we are.
    if Path(err.template) in (path, path.absolute()) or not err.template:
        file = shown
    else:
        file = _relative(Path(err.template))
    return Diagnostic(file, err.line or 1, 1, code, message)


def _relative(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)

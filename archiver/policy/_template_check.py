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

from archiver.errors import Diagnostic, TemplateError
from archiver.policy import _codes as codes
from archiver.policy._document import Document
from archiver.policy.model import AuditLogSink, FileSink, Policy, WebhookSink
from archiver.policy.paths import repository_root
from archiver.templates import CompiledTemplate, compile_template, sample_events
from archiver.templates.loader import template_problem


def check(policy: Policy, doc: Document) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    root = repository_root(doc.base_dir)
    for i, spec in enumerate(policy.sinks):
        if isinstance(spec, WebhookSink | AuditLogSink | FileSink) and spec.template is not None:
            out.extend(_check_one(spec, i, doc, root))
    return out


def _check_one(
    spec: WebhookSink | AuditLogSink | FileSink, index: int, doc: Document, root: Path
) -> Iterator[Diagnostic]:
    written = spec.template
    assert written is not None
    refused = template_problem(root, doc.base_dir, written)
    if refused is not None:
        yield doc.at_value(("sinks", index, "template"), codes.TEMPLATE_NOT_ALLOWED,
                           f"template `{written}` is not allowed: {refused}; a template must "
                           "be a `*.j2` file inside the policy's repository")
        return
    path = doc.resolve(written)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        yield doc.at_value(("sinks", index, "template"), codes.TEMPLATE_MISSING,
                           f"template `{doc.show(written)}` {what}")
        return
    used_by = doc.positions.value(("sinks", index, "template"))
    where = f"(used by {doc.file}:{used_by.line})"
    try:
        template = compile_template(path, root=root)
    except TemplateError as err:
        yield _at_template(err, path, doc.show(written), codes.TEMPLATE_COMPILE,
                           f"template does not compile: {_message(err)} {where}")
        return
    problem = _render_samples(template, spec)
    if problem is not None:
        failure, event = problem
        yield _at_template(failure, path, doc.show(written), codes.TEMPLATE_RENDER,
                           f"template fails on a sample `{event}` event: {_message(failure)} "
                           f"{where}")


# What a file sink's template renders each line from (archiver.stages.sinks.file).
SAMPLE_FILE_LINE = {
    "record": {"id": "a-1", "contact_id": "c-1", "outcome": "Survey Taken", "duration": 61,
               "updated_at": "2024-01-01T00:00:00.000Z", "retention_days": 365},
    "campaign_id": "1001",
    "batch_id": "batch-sample",
}


def _render_samples(
    template: CompiledTemplate, spec: WebhookSink | AuditLogSink | FileSink
) -> tuple[TemplateError, str] | None:
    """The first sample event of those the sink receives that the template cannot render."""
    if isinstance(spec, FileSink):
        try:
            line = template.render_json(SAMPLE_FILE_LINE)
        except TemplateError as err:
            return err, "record"
        if not isinstance(line, dict):
            return TemplateError(template.name, None, "a file line must be a JSON object"), (
                "record"
            )
        return None
    # Imported here, not at the top: the sinks import the registry, which imports the models.
    from archiver.audit.chain import CHAIN_KEYS
    from archiver.stages.sinks.audit_log import AuditLogStage
    from archiver.stages.sinks.webhook import Webhook

    receives = Webhook.events if isinstance(spec, WebhookSink) else AuditLogStage.events
    for event in sample_events():
        if event["event"] not in receives:
            continue
        try:
            rendered = template.render_json(event)
        except TemplateError as err:
            return err, event["event"]
        if not isinstance(spec, AuditLogSink):
            continue
        if not isinstance(rendered, dict):
            return TemplateError(template.name, None, "an audit record must be a JSON object"), (
                event["event"]
            )
        reserved = sorted(CHAIN_KEYS & rendered.keys())
        if reserved:
            keys = ", ".join(f"`{k}`" for k in reserved)
            return TemplateError(template.name, None, f"an audit record must not set {keys}; "
                                 "the audit log adds them to chain its lines"), event["event"]
    return None


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

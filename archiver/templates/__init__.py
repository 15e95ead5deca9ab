"""Payload templates: Jinja, sandboxed, rendered to JSON for webhooks and the audit log.

The context a template receives is described in :mod:`archiver.templates.context`;
where templates may be read from in :mod:`archiver.templates.loader` (``*.j2`` files
inside the policy's repository); what one render may cost in
:mod:`archiver.templates.bounds`; what its output must be (JSON strict parsers accept) in
:mod:`archiver.templates.output`.
"""

from __future__ import annotations

from archiver.templates.compiled import (
    DEFAULT_AUDIT,
    DEFAULT_WEBHOOK,
    CompiledTemplate,
    compile_template,
    load_template,
)
from archiver.templates.context import (
    BatchEvent,
    EventContext,
    EventKind,
    RunEvent,
    sample_events,
)

__all__ = [
    "DEFAULT_AUDIT",
    "DEFAULT_WEBHOOK",
    "BatchEvent",
    "CompiledTemplate",
    "EventContext",
    "EventKind",
    "RunEvent",
    "compile_template",
    "load_template",
    "sample_events",
]

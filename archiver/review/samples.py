"""Payloads rendered without sending them: the archive body and every sink's events.

Sinks are not built here (a webhook sink needs its secret, an audit log sink
creates its folder): their templates are loaded and rendered with the same
event contexts a run builds (archiver.engine.payloads), which is all a payload is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archiver.backends.campaign_archive.payloads import archive_request
from archiver.engine.backend import AttemptRecord
from archiver.engine.campaign import (
    batch_settings,
    composition_of,
    idempotency_key,
    request_of,
)
from archiver.engine.payloads import batch_event, run_event
from archiver.errors import EXIT_FAILED, EXIT_OK
from archiver.policy.model import CAMPAIGN_ARCHIVE, Policy
from archiver.review.verdicts import ArchiveFields
from archiver.stages import registry
from archiver.templates import load_template

# Event kinds in the order a run emits them.
EVENT_ORDER = ("run_started", "batch_archived", "run_finished")
ARCHIVE = "archive"


@dataclass(frozen=True, slots=True)
class SampleIds:
    """The made-up values a sample carries where a run would have real ones."""

    run_id: str
    batch_id: str
    timestamp: str
    migration_job_id: str
    job_status: str


@dataclass(frozen=True, slots=True)
class Payload:
    """One rendered payload: the archive body, or one event as one sink receives it."""

    sink: str  # "archive", or the sink's type ("webhook", "audit_log")
    index: int | None  # position in the policy's ``sinks`` list
    event: str  # "archive_request" or the event kind
    template: str  # the template that shaped it, or the wire model for the archive body
    body: Any

    @property
    def label(self) -> str:
        where = f"sinks[{self.index}] {self.sink}" if self.index is not None else self.sink
        return f"{where} · {self.event}"


@dataclass(frozen=True, slots=True)
class SinkTemplate:
    sink: str
    index: int
    path: Path | None  # None: the packaged default
    default: str
    events: frozenset[str]

    @property
    def template_name(self) -> str:
        return str(self.path) if self.path is not None else f"(default) {self.default}"


def sink_templates(policy: Policy) -> tuple[list[SinkTemplate], list[str]]:
    """Each sink's template (its own, or its type's packaged default), and a note for
    every sink whose events cannot be sampled or that does more than receive events."""
    found: list[SinkTemplate] = []
    notes: list[str] = []
    for index, item in enumerate(policy.sinks):
        stage = registry.stage_type(item)
        if stage is None:
            notes.append(f"sinks[{index}] {item.type}: not installed; no sample is rendered")
            continue
        written = stage.template(item.options)
        path = policy.resolve(written) if written else None
        if stage.events and (path is not None or stage.default_template):
            found.append(SinkTemplate(item.type, index, path, stage.default_template or "",
                                      stage.events))
        elif stage.events:
            notes.append(f"sinks[{index}] {item.type}: it shapes its events itself (no "
                         "template); no sample is rendered")
        note = stage.note(item.options)
        if note:
            notes.append(f"sinks[{index}] {item.type}: {note}")
    return found, notes


def render_payloads(
    policy: Policy,
    campaign_id: str,
    lines: Sequence[ArchiveFields],
    counts: Mapping[str, int],
    ids: SampleIds,
    *,
    events: Sequence[str] = EVENT_ORDER,
    target: Mapping[str, Any] | None = None,
) -> list[Payload]:
    """The archive body for ``lines`` and every sink's rendering of ``events``.

    ``counts`` (final state -> attempts) fills the run events. A batch event needs at
    least one line; without lines only the run events are rendered. ``target``: what a
    run would talk to (``Target.as_dict``, after --base-url and CXONE_BASE_URL); without
    one, the policy's own connection.
    """
    out: list[Payload] = []
    contexts: dict[str, dict[str, Any]] = {}
    if lines:
        if policy.connection.api == CAMPAIGN_ARCHIVE:
            request = archive_request(
                campaign_id, [_record(line) for line in lines],
                force_cold_storage=policy.batch.force_cold_storage,
                delete_active=policy.batch.delete_active,
            )
            out.append(
                Payload(ARCHIVE, None, "archive_request", "wire.ArchiveRequest", dict(request))
            )
        contexts["batch_archived"] = _batch_context(policy, campaign_id, lines, ids, target)
    for kind in ("run_started", "run_finished"):
        shown = counts if kind == "run_finished" else {}
        # The run's end as these counts would make it: failed (exit 1) with a failed attempt.
        result = None if kind == "run_started" else (
            {"status": "failed", "exit_code": EXIT_FAILED} if shown.get("failed", 0) > 0
            else {"status": "completed", "exit_code": EXIT_OK}
        )
        contexts[kind] = run_event(
            run_id=ids.run_id, policy=policy, kind=kind, counts=shown, timestamp=ids.timestamp,
            result=result, target=target,
        )
    templates, _ = sink_templates(policy)
    for sink in templates:
        template = load_template(sink.path, sink.default, root=policy.root)
        for kind in events:
            if kind in sink.events and kind in contexts:
                body = template.render_json(contexts[kind])
                out.append(Payload(sink.sink, sink.index, kind, sink.template_name, body))
    return out


def _batch_context(
    policy: Policy, campaign_id: str, lines: Sequence[ArchiveFields], ids: SampleIds,
    target: Mapping[str, Any] | None,
) -> dict[str, Any]:
    composition = composition_of([line.attempt_id for line in lines])
    batch = _Batch(
        id=ids.batch_id, campaign_id=campaign_id, seq=1,
        idempotency_key=idempotency_key(
            campaign_id, composition, request_of(lines, batch_settings(policy.batch))
        ),
        size=len(lines),
    )
    files = [
        {"path": path, "sha256": "0" * 64, "records": len(lines)}
        for _, item, stage in registry.sinks_of(policy)
        for path in stage.sample_files(item.options, campaign_id, ids.batch_id,
                                       ids.timestamp[:10])
    ]
    return batch_event(
        run_id=ids.run_id, policy=policy, batch=batch, lines=lines, status=ids.job_status,
        job_id=ids.migration_job_id, timestamp=ids.timestamp, files=files, target=target,
    )


def _record(line: ArchiveFields) -> AttemptRecord:
    return AttemptRecord(
        id=line.attempt_id, contact_id=line.contact_id, outcome=line.outcome,
        disposition=line.disposition, duration=line.duration, anonymized=line.anonymized,
        retention_days=line.retention_days,
    )


@dataclass(frozen=True, slots=True)
class _Batch:
    id: str
    campaign_id: str
    seq: int
    idempotency_key: str
    size: int

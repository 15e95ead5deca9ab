"""Sink ``audit_log``: one hash-chained JSONL line per batch and per run start and end.

Lines are written in outbox order by one process at a time (the run holds the
state lock). Delivery is idempotent: if the file's last line already carries
this event id (the process died after the fsync and before the outbox was
updated), nothing is written again, so a crash leaves neither a hole nor a
duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from archiver import jsonsafe
from archiver.audit import AuditLog
from archiver.audit.chain import (
    DIGEST_FOLDER_SUFFIX,
    AuditLine,
    digest_folder,
    number_problem,
    record_problem,
)
from archiver.audit.receipt import Receipt
from archiver.engine.building import BuildContext
from archiver.errors import AuditError, TemplateError
from archiver.policy import _codes as codes
from archiver.policy.paths import OutsideRepository
from archiver.stages.descriptor import CheckContext, Finding, StageType
from archiver.templates import DEFAULT_AUDIT, CompiledTemplate, load_template, sample_events


class AuditLogSink(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["audit_log"] = "audit_log"
    path: str
    template: str | None = None

if TYPE_CHECKING:
    from archiver.state.store import Store


class AuditLogStage:
    name = "audit_log"
    events = frozenset({"run_started", "batch_archived", "run_finished"})

    def __init__(self, log: AuditLog, template: CompiledTemplate) -> None:
        self.log = log
        self.template = template
        # The outbox's name for it: the file it writes, wherever the policy lists it.
        self.identity = f"audit_log:{log.path.resolve()}"

    @classmethod
    def from_spec(cls, spec: AuditLogSink, ctx: BuildContext) -> AuditLogStage:
        template = load_template(
            ctx.policy.resolve(spec.template) if spec.template else None, DEFAULT_AUDIT,
            root=ctx.policy.root,
        )
        return cls(AuditLog(ctx.policy.resolve(spec.path)), template)

    def attach_store(self, store: Store) -> None:
        """The run's state store vouches for the log: a torn last line is repaired only in
        a log the store has a receipt for (see ``AuditLog``)."""
        self.log.checkpoint = store.events.audit_checkpoint
        self.log.shared_store = store.shared

    def render(self, event: Mapping[str, Any]) -> str:
        record = self.template.render_json(event)
        problem = record_problem(record) or number_problem(record)
        if problem is not None:
            raise TemplateError(self.template.name, None, problem)
        # render_json refused what UTF-8 or a strict parser would not take (NaN, a lone
        # surrogate, deep nesting): the line can be stored, chained and read back.
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False)

    def deliver(self, event_id: str, body: str) -> str:
        """Append the line (once); the receipt names the file, seq and hash written, so the
        state store knows where the log must end (``archiver audit verify --state``)."""
        tail = self.log.tail()
        if tail is None or tail.event_id != event_id:
            tail = self.log.append(self._record(event_id, body), event_id=event_id)
        return self._receipt(tail)

    def deliver_many(self, events: Sequence[tuple[str, str]]) -> list[str | None]:
        """Append (event_id, body) pairs, in outbox order, with one write and one fsync
        (an fsync costs milliseconds; a run has one event per batch). Receipts in order.

        Lines are written in outbox order, so a log that already ends with one of these
        events (a run died after writing them, before the store recorded it) holds that
        one and every one before it: those are not written again."""
        tail = self.log.tail()
        ids = [event_id for event_id, _ in events]
        done = ids.index(tail.event_id) + 1 if tail is not None and tail.event_id in ids else 0
        written = self.log.append_many(
            [(self._record(event_id, body), event_id) for event_id, body in events[done:]],
            unrecorded=ids,  # pending in the store: a log ending with one is not cut
        )
        # An event found already written gets the receipt only when it is the log's end.
        found: list[str | None] = [None] * done
        if tail is not None and done:
            found[-1] = self._receipt(tail)
        return found + [self._receipt(line) for line in written]

    def _record(self, event_id: str, body: str) -> dict[str, Any]:
        """The line an event's stored body holds: what ``render`` made of it, unless the
        state store was damaged (or edited) since."""
        try:
            record = jsonsafe.loads(body)
        except (ValueError, TypeError) as err:
            problem = f"not JSON ({err})"
        else:
            if isinstance(record, dict):
                return record
            problem = f"JSON {type(record).__name__}, not an object"
        raise AuditError(
            f"event {event_id} for the audit log {self.log.path}, as the state store keeps "
            f"it, is {problem}: nothing past it can be written; restore the state store from "
            f"a backup, or give up the log's undelivered events with `archiver runs outbox "
            f"--drop {self.identity}`"
        )

    def _receipt(self, line: AuditLine) -> str:
        return Receipt.of(str(self.log.path.resolve()), line).to_json()


def _check(spec: AuditLogSink, ctx: CheckContext) -> Iterable[Finding]:
    try:
        target = ctx.confine(spec.path, "audit log")
    except OutsideRepository as err:
        yield Finding(("path",), str(err), codes.PATH_OUTSIDE)
        return
    if digest_folder(target).is_symlink():
        # A signed run writes its digests there: never through a link, wherever it leads.
        yield Finding(("path",), f"audit log `{ctx.show(spec.path)}`: its digest folder "
                      f"`{ctx.show(spec.path + DIGEST_FOLDER_SUFFIX)}` is a symlink; signed "
                      "digests are written only into a folder of archiver's own",
                      codes.PATH_OUTSIDE)
        return
    if target.is_dir():
        yield Finding(("path",), f"audit log `{ctx.show(spec.path)}` is a folder, not a file",
                      codes.AUDIT_PATH_IS_DIR)
    elif spec.path.endswith(("/", "\\")) or spec.path.rsplit("/", 1)[-1] == ".":
        # A path written as a folder ("audit/", "audit/.") would be written as a file named
        # "audit"; nothing need be there (or a file is), so it is told as written, not as
        # found.
        yield Finding(("path",), f"audit log `{spec.path}` is written as a folder (it ends "
                      "in `/` or `/.`): name the log's file", codes.AUDIT_PATH_IS_DIR)


def _render_check(
    template: CompiledTemplate, spec: AuditLogSink
) -> tuple[TemplateError, str] | None:
    """Every sample event renders to a record the audit log takes."""
    for event in sample_events():
        if event["event"] not in AuditLogStage.events:
            continue
        try:
            rendered = template.render_json(event)
        except TemplateError as err:
            return err, str(event["event"])
        problem = record_problem(rendered) or number_problem(rendered)
        if problem is not None:
            return TemplateError(template.name, None, problem), str(event["event"])
    return None


def _audit_log(spec: AuditLogSink) -> str:
    return spec.path


STAGE = StageType(
    kind="sink", name="audit_log", options=AuditLogSink, factory=AuditLogStage.from_spec,
    summary="a hash-chained JSONL line per batch and per run start and end",
    check=_check, events=AuditLogStage.events, default_template=DEFAULT_AUDIT,
    render_check=_render_check, audit_log=_audit_log, inline=True, schema_def="audit_log_sink",
)

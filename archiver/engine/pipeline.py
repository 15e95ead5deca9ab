"""The pure part of the engine: one listed record in, exactly one decision out.

No I/O happens here, so the same code decides in `run`, `plan`, `test` and
`diff`, and the engine benchmark measures exactly what a run does per record.
Records come parsed by the policy's backend (:class:`AttemptRecord`, or a
:class:`MalformedRecord` that is quarantined).
"""

from __future__ import annotations

from collections.abc import Sequence

from archiver.engine.backend import AttemptRecord, MalformedRecord
from archiver.engine.protocols import Filter, Transform
from archiver.engine.records import Decision
from archiver.governance.holds import HoldSet


class Pipeline:
    """Filters then transforms, in policy order.

    ``guard_anonymized``: the backend's records carry an anonymized flag, and one that
    is not true is never archived, whatever the stages say. Off for a backend without
    the flag (its policies cannot read it either: validation refuses that).

    ``holds``: the policy's legal holds. A held attempt is decided ``hold`` before any
    stage sees it, whatever the stages would say.
    """

    def __init__(
        self,
        filters: Sequence[Filter],
        transforms: Sequence[Transform],
        *,
        guard_anonymized: bool = True,
        holds: HoldSet | None = None,
        campaign_id: str = "",
    ) -> None:
        self.filters = tuple(filters)
        self.transforms = tuple(transforms)
        self.guard_anonymized = guard_anonymized
        self.holds = holds if holds else None
        self.campaign_id = campaign_id

    def decide(self, record: AttemptRecord | MalformedRecord, *, fallback_id: str = "") -> Decision:
        """Decide one listed record. ``fallback_id`` names a record that has no usable id
        (a run names it by its content: :class:`archiver.engine.noid.NoIdNames`)."""
        if self.holds is not None:
            held = self.held(record)
            if held is not None:
                return held
        if isinstance(record, MalformedRecord):
            return Decision(
                attempt_id=record.attempt_id or fallback_id,
                kind="quarantine",
                reason=f"malformed record: {malformed_reason(record)}",
            )
        for stage in self.filters:
            verdict = stage.check(record)
            if verdict is not None:
                return verdict
        decision = Decision(attempt_id=record.id, kind="archive", attempt=record)
        for transform in self.transforms:
            decision = transform.apply(decision)
            if decision.kind != "archive":
                return decision
        if self.guard_anonymized and decision.kind == "archive" and record.anonymized is not True:
            # Whatever the policy's stages say, a record that still carries personal
            # data is never archived (a policy without the anonymized filter included).
            return Decision(
                attempt_id=record.id, kind="quarantine", reason=NOT_ANONYMIZED, attempt=record
            )
        if decision.retention_days is None:
            # A policy without a retention transform still archives with a known period.
            decision.retention_days = DEFAULT_RETENTION_DAYS
        return decision

    def held(self, record: AttemptRecord | MalformedRecord) -> Decision | None:
        """The ``hold`` decision when a legal hold covers the record (a malformed record
        by its id and campaign), else None."""
        if self.holds is None:
            return None
        if isinstance(record, MalformedRecord):
            hold = self.holds.match(self.campaign_id, record.attempt_id, None)
            if hold is None or not record.attempt_id:
                return None
            return Decision(attempt_id=record.attempt_id, kind="hold", reason=hold.reason)
        hold = self.holds.match(self.campaign_id, record.id, record.contact_id)
        if hold is None:
            return None
        return Decision(attempt_id=record.id, kind="hold", reason=hold.reason, attempt=record)

def malformed_reason(record: MalformedRecord) -> str:
    """The reason, naming the field (backends word it with or without the field)."""
    if f"`{record.field}`" in record.reason or record.field in ("", "(record)"):
        return record.reason
    return f"field `{record.field}`: {record.reason}"


DEFAULT_RETENTION_DAYS = 365
NOT_ANONYMIZED = "not anonymized"

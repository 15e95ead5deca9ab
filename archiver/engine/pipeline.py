"""The pure part of the engine: one raw record in, exactly one decision out.

No I/O happens here, so the same code decides in `run`, `plan`, `test` and
`diff`, and the engine benchmark measures exactly what a run does per record.
"""

from __future__ import annotations

from collections.abc import Sequence

from archiver.cxone.wire import Malformed, parse_attempt
from archiver.engine.protocols import Filter, Transform
from archiver.engine.records import Decision


class Pipeline:
    """Filters then transforms, in policy order."""

    def __init__(self, filters: Sequence[Filter], transforms: Sequence[Transform]) -> None:
        self.filters = tuple(filters)
        self.transforms = tuple(transforms)

    def decide(self, raw: object, *, fallback_id: str = "") -> Decision:
        """Decide one listed record. ``fallback_id`` names a record that has no usable id."""
        parsed = parse_attempt(raw)
        if isinstance(parsed, Malformed):
            return Decision(
                attempt_id=parsed.attempt_id or fallback_id,
                kind="quarantine",
                reason=f"malformed record: {parsed.reason}",
            )
        for stage in self.filters:
            verdict = stage.check(parsed)
            if verdict is not None:
                return verdict
        decision = Decision(attempt_id=parsed.id, kind="archive", attempt=parsed)
        for transform in self.transforms:
            decision = transform.apply(decision)
            if decision.kind != "archive":
                return decision
        if decision.kind == "archive" and not parsed.anonymized:
            # Whatever the policy's stages say, a record that still carries personal
            # data is never archived (a policy without the anonymized filter included).
            return Decision(
                attempt_id=parsed.id, kind="quarantine", reason=NOT_ANONYMIZED, attempt=parsed
            )
        if decision.retention_days is None:
            # A policy without a retention transform still archives with a known period.
            decision.retention_days = DEFAULT_RETENTION_DAYS
        return decision


DEFAULT_RETENTION_DAYS = 365
NOT_ANONYMIZED = "not anonymized"

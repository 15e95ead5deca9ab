"""Filter ``outcome``: only attempts whose outcome code is approved are archived."""

from __future__ import annotations

from archiver.engine.backend import AttemptRecord, RecordField
from archiver.engine.records import Decision
from archiver.policy.model import OutcomeFilter


class Outcome:
    name = "outcome"

    @classmethod
    def reads(cls, spec: OutcomeFilter) -> frozenset[RecordField]:
        return frozenset({"outcome"})

    def __init__(self, spec: OutcomeFilter) -> None:
        self.approved = frozenset(spec.approved)

    def check(self, attempt: AttemptRecord) -> Decision | None:
        if attempt.outcome in self.approved:
            return None
        return Decision(
            attempt_id=attempt.id,
            kind="skip",
            reason=f"outcome {attempt.outcome} not approved",
            attempt=attempt,
        )

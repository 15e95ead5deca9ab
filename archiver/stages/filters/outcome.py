"""Filter ``outcome``: only attempts whose outcome code is approved are archived."""

from __future__ import annotations

from archiver.cxone.wire import Attempt
from archiver.engine.records import Decision
from archiver.policy.model import OutcomeFilter


class Outcome:
    name = "outcome"

    def __init__(self, spec: OutcomeFilter) -> None:
        self.approved = frozenset(spec.approved)

    def check(self, attempt: Attempt) -> Decision | None:
        if attempt.outcome_code in self.approved:
            return None
        return Decision(
            attempt_id=attempt.id,
            kind="skip",
            reason=f"outcome {attempt.outcome_code} not approved",
            attempt=attempt,
        )

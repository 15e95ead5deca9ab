"""What flows through the pipeline: decisions about attempts, and archive batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from archiver.cxone.wire import Attempt

DecisionKind = Literal["archive", "skip", "quarantine"]
FinalState = Literal["archived", "skipped", "quarantined", "failed"]
FINAL_STATES: tuple[FinalState, ...] = ("archived", "skipped", "quarantined", "failed")


@dataclass(slots=True)
class Decision:
    """The one decision a listed attempt gets; ``attempt`` is None for a malformed record."""

    attempt_id: str
    kind: DecisionKind
    reason: str = ""
    retention_days: int | None = None
    attempt: Attempt | None = None

    @property
    def outcome(self) -> str:
        return self.attempt.outcome_code if self.attempt is not None else ""

"""What flows through the pipeline: decisions about attempts, and archive batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from archiver.engine.backend import AttemptRecord

DecisionKind = Literal["archive", "skip", "quarantine", "hold"]
FinalState = Literal["archived", "skipped", "quarantined", "failed", "held"]
# ``held``: a legal hold covers the attempt (governance/holds.py); like ``failed``, a
# later run decides it again, and archives it once the hold has ended.
FINAL_STATES: tuple[FinalState, ...] = ("archived", "skipped", "quarantined", "failed", "held")
# What a run report counts per campaign: the final states, and ``pending``: attempts a
# run stopped at its batch limit listed and left for the next run (0 otherwise).
COUNTED: tuple[str, ...] = (*FINAL_STATES, "pending")
# The retention an archive keeps an attempt for, in days (a decision's retention_days).
MIN_RETENTION_DAYS, MAX_RETENTION_DAYS = 1, 3650


@dataclass(slots=True)
class Decision:
    """The one decision a listed attempt gets; ``attempt`` is None for a malformed record."""

    attempt_id: str
    kind: DecisionKind
    reason: str = ""
    retention_days: int | None = None
    attempt: AttemptRecord | None = None

    @property
    def outcome(self) -> str:
        return self.attempt.outcome if self.attempt is not None else ""

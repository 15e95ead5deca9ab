"""Filter ``outcome``: only attempts whose outcome code is approved are archived."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from archiver.engine.backend import AttemptRecord, RecordField
from archiver.engine.building import BuildContext
from archiver.engine.records import Decision
from archiver.policy import _codes as codes
from archiver.stages.descriptor import CheckContext, Finding, JsonPath, StageType


class OutcomeFilter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["outcome"] = "outcome"
    approved: tuple[str, ...]


class Outcome:
    name = "outcome"

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


def _reads(spec: OutcomeFilter) -> frozenset[RecordField]:
    return frozenset({"outcome"})


def _check(spec: OutcomeFilter, ctx: CheckContext) -> Iterable[Finding]:
    if not spec.approved:
        yield Finding(("approved",), "the outcome filter approves no outcome, so every attempt "
                      "would be skipped; list at least one outcome code", codes.NOTHING_APPROVED)


def _outcomes(spec: OutcomeFilter) -> Iterable[tuple[str, JsonPath]]:
    return [(code, ("approved", j)) for j, code in enumerate(spec.approved)]


def _approves(spec: OutcomeFilter) -> frozenset[str] | None:
    # A filter approving nothing is reported on its own and left out here, so that it
    # does not also make every retention rule look wrong.
    return frozenset(spec.approved) if spec.approved else None


def _build(spec: OutcomeFilter, ctx: BuildContext) -> Outcome:
    return Outcome(spec)


STAGE = StageType(
    kind="filter", name="outcome", options=OutcomeFilter, factory=_build,
    summary="archive only attempts whose outcome code is approved",
    reads=_reads, check=_check, outcomes=_outcomes, approves=_approves,
    inline=True, schema_def="outcome_filter",
)

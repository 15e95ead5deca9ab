"""Transform ``retention``: how many days the archive keeps an attempt.

Order of precedence: the record's own ``retentionDays`` (when the policy says
``use_record_value``), then a rule for the attempt's outcome, then the default.
A record value outside 1..3650 is not clamped silently: the attempt is
quarantined, because shortening or lengthening a retention period is a
compliance decision a person must make.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from archiver.engine.backend import RecordField
from archiver.engine.building import BuildContext
from archiver.engine.records import MAX_RETENTION_DAYS, MIN_RETENTION_DAYS, Decision
from archiver.policy import _codes as codes
from archiver.stages.descriptor import CheckContext, Finding, JsonPath, StageType

MIN_DAYS = MIN_RETENTION_DAYS
MAX_DAYS = MAX_RETENTION_DAYS


class RetentionRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: str
    days: int = Field(ge=MIN_DAYS, le=MAX_DAYS)


class RetentionTransform(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["retention"] = "retention"
    default_days: int = Field(default=365, ge=MIN_DAYS, le=MAX_DAYS)
    use_record_value: bool = False
    rules: tuple[RetentionRule, ...] = ()


class Retention:
    name = "retention"

    def __init__(self, spec: RetentionTransform) -> None:
        self.default_days = spec.default_days
        self.use_record_value = spec.use_record_value
        self.rules = {rule.outcome: rule.days for rule in spec.rules}

    def apply(self, decision: Decision) -> Decision:
        attempt = decision.attempt
        if attempt is None:
            return decision
        days = self.rules.get(attempt.outcome, self.default_days)
        if self.use_record_value and attempt.retention_days is not None:
            own = attempt.retention_days
            if not MIN_DAYS <= own <= MAX_DAYS:
                decision.kind = "quarantine"
                decision.reason = f"retentionDays {own} outside {MIN_DAYS}..{MAX_DAYS}"
                return decision
            days = own
        decision.retention_days = days
        return decision


def _reads(spec: RetentionTransform) -> frozenset[RecordField]:
    """The outcome (for its rules) and, with ``use_record_value``, the record's own
    retention: a backend without one cannot serve that policy."""
    read: set[RecordField] = {"outcome"}
    if spec.use_record_value:
        read.add("retention_days")
    return frozenset(read)


def _check(spec: RetentionTransform, ctx: CheckContext) -> Iterable[Finding]:
    seen: dict[str, int] = {}
    for r, rule in enumerate(spec.rules):
        at: JsonPath = ("rules", r, "outcome")
        if rule.outcome in seen:
            line = ctx.line_of(("rules", seen[rule.outcome]))
            yield Finding(at, f"a second retention rule for `{rule.outcome}` (first at line "
                          f"{line})", codes.DUPLICATE_RULE)
            continue
        seen[rule.outcome] = r
        if (ctx.approved is not None and rule.outcome not in ctx.approved
                and rule.outcome in ctx.known_outcomes):
            listed = ", ".join(sorted(ctx.approved))
            yield Finding(at, f"retention rule for `{rule.outcome}` never applies: the outcome "
                          f"filter does not approve it (approved: {listed})",
                          codes.RULE_NOT_APPROVED)


def _outcomes(spec: RetentionTransform) -> Iterable[tuple[str, JsonPath]]:
    return [(rule.outcome, ("rules", r, "outcome")) for r, rule in enumerate(spec.rules)]


def _build(spec: RetentionTransform, ctx: BuildContext) -> Retention:
    return Retention(spec)


STAGE = StageType(
    kind="transform", name="retention", options=RetentionTransform, factory=_build,
    summary="how many days the archive keeps each attempt",
    reads=_reads, hints={"retention_days": "set `use_record_value: false`"}, check=_check,
    outcomes=_outcomes, unique=codes.TWO_RETENTIONS, inline=True, schema_def="retention_transform",
)

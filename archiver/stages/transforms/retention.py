"""Transform ``retention``: how many days the archive keeps an attempt.

Order of precedence: the record's own ``retentionDays`` (when the policy says
``use_record_value``), then a rule for the attempt's outcome, then the default.
A record value outside 1..3650 is not clamped silently: the attempt is
quarantined, because shortening or lengthening a retention period is a
compliance decision a person must make.
"""

from __future__ import annotations

from archiver.engine.backend import RecordField
from archiver.engine.records import Decision
from archiver.policy.model import RetentionTransform

MIN_DAYS = 1
MAX_DAYS = 3650


class Retention:
    name = "retention"

    @classmethod
    def reads(cls, spec: RetentionTransform) -> frozenset[RecordField]:
        """The outcome (for its rules) and, with ``use_record_value``, the record's own
        retention: a backend without one cannot serve that policy."""
        read: set[RecordField] = {"outcome"}
        if spec.use_record_value:
            read.add("retention_days")
        return frozenset(read)

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

"""One decision per fixture or listed record, through the engine's own pipeline.

The pipeline is the one place decisions are made; this module only adds what a
review needs on top: ``abort`` as a decision of its own (a run stops the
campaign there; a review keeps going to show everything) and the plain fields
an archive body is built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from archiver.cxone.wire import Attempt, attempt_id_of, parse_attempt
from archiver.engine.pipeline import Pipeline
from archiver.engine.registry import BuildContext, build_pipeline_stages
from archiver.errors import CampaignAborted
from archiver.policy.model import Policy

VerdictKind = Literal["archive", "skip", "quarantine", "abort"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a policy decides for one record; ``abort`` stops the campaign in a run."""

    attempt_id: str
    kind: VerdictKind
    reason: str = ""
    retention_days: int | None = None
    outcome: str = ""
    line: ArchiveFields | None = None  # set for ``archive``: what its archive item carries


@dataclass(frozen=True, slots=True)
class ArchiveFields:
    """The fields of one archive item (satisfies archiver.engine.payloads.ArchiveLine)."""

    attempt_id: str
    contact_id: str
    outcome: str
    disposition: str
    duration: int
    retention_days: int
    anonymized: bool


class Decider:
    """A policy's pipeline for one campaign."""

    def __init__(self, policy: Policy, campaign_id: str) -> None:
        self.campaign_id = campaign_id
        filters, transforms = build_pipeline_stages(
            BuildContext(policy=policy, campaign_id=campaign_id)
        )
        self.pipeline = Pipeline(filters, transforms)

    def decide(self, raw: object, *, fallback_id: str = "") -> Verdict:
        try:
            decision = self.pipeline.decide(raw, fallback_id=fallback_id)
        except CampaignAborted as err:
            return Verdict(
                attempt_id=attempt_id_of(raw) or fallback_id, kind="abort", reason=str(err),
                outcome=_outcome_of(raw),
            )
        attempt = decision.attempt
        line = None
        if decision.kind == "archive" and attempt is not None and decision.retention_days is not None:
            line = ArchiveFields(
                attempt_id=attempt.id, contact_id=attempt.contact_id,
                outcome=attempt.outcome_code, disposition=attempt.disposition,
                duration=attempt.duration, retention_days=decision.retention_days,
                anonymized=attempt.anonymized,
            )
        return Verdict(
            attempt_id=decision.attempt_id,
            kind=decision.kind,
            reason=decision.reason,
            retention_days=decision.retention_days if decision.kind == "archive" else None,
            outcome=decision.outcome,
            line=line,
        )


def _outcome_of(raw: object) -> str:
    parsed = parse_attempt(raw)
    return parsed.outcome_code if isinstance(parsed, Attempt) else ""

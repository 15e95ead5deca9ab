"""One decision per fixture or listed record, through the engine's own pipeline.

The pipeline is the one place decisions are made; this module only adds what a
review needs on top: ``abort`` as a decision of its own (a run stops the
campaign there; a review keeps going to show everything) and the plain fields
an archive body is built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from archiver.backends.campaign_archive.records import parse_record
from archiver.backends.catalog import fields_of
from archiver.engine.backend import AttemptRecord, MalformedRecord
from archiver.engine.building import BuildContext
from archiver.engine.pipeline import Pipeline
from archiver.errors import CampaignAborted
from archiver.policy.model import Policy
from archiver.stages.registry import build_pipeline_stages

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
    disposition: str | None
    duration: int | None
    retention_days: int
    anonymized: bool | None


class Decider:
    """A policy's pipeline for one campaign.

    It decides records as the policy's backend lists them, or fixture records (written
    in the campaign archive's listing format, the format of policy test files): those
    are read with only the fields the policy's backend provides, so a fixture cannot
    pass a check the real listing could not.
    """

    def __init__(self, policy: Policy, campaign_id: str) -> None:
        self.campaign_id = campaign_id
        self.fields = fields_of(policy.connection.api, policy.source.type)
        filters, transforms = build_pipeline_stages(
            BuildContext(policy=policy, campaign_id=campaign_id)
        )
        self.pipeline = Pipeline(
            filters, transforms, guard_anonymized="anonymized" in self.fields
        )

    def record(self, raw: object) -> AttemptRecord | MalformedRecord:
        """``raw`` as the pipeline reads it."""
        if isinstance(raw, AttemptRecord | MalformedRecord):
            return raw
        parsed = parse_record(raw)
        if isinstance(parsed, MalformedRecord):
            return parsed
        return parsed._replace(
            disposition=parsed.disposition if "disposition" in self.fields else None,
            duration=parsed.duration if "duration" in self.fields else None,
            anonymized=parsed.anonymized if "anonymized" in self.fields else None,
            retention_days=parsed.retention_days if "retention_days" in self.fields else None,
        )

    def decide(self, raw: object, *, fallback_id: str = "") -> Verdict:
        record = self.record(raw)
        try:
            decision = self.pipeline.decide(record, fallback_id=fallback_id)
        except CampaignAborted as err:
            found = record.id if isinstance(record, AttemptRecord) else record.attempt_id
            return Verdict(
                attempt_id=found or fallback_id, kind="abort", reason=str(err),
                outcome=record.outcome if isinstance(record, AttemptRecord) else "",
            )
        attempt = decision.attempt
        line = None
        if decision.kind == "archive" and attempt is not None and decision.retention_days is not None:
            line = ArchiveFields(
                attempt_id=attempt.id, contact_id=attempt.contact_id,
                outcome=attempt.outcome, disposition=attempt.disposition,
                duration=attempt.duration, retention_days=decision.retention_days,
                anonymized=attempt.anonymized,
            )
        # Review tools decide without legal holds (a run records those): never "hold".
        assert decision.kind != "hold"
        return Verdict(
            attempt_id=decision.attempt_id,
            kind=decision.kind,
            reason=decision.reason,
            retention_days=decision.retention_days if decision.kind == "archive" else None,
            outcome=decision.outcome,
            line=line,
        )

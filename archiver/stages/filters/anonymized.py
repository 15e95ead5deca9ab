"""Filter ``anonymized``: an attempt that still carries personal data is never archived.

``on_violation: quarantine`` sets the attempt aside and keeps the run going;
``abort`` stops the campaign before anything of it is archived (the engine lists
a campaign completely before its first archive call, so nothing has been sent).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from archiver.engine.backend import AttemptRecord, RecordField
from archiver.engine.building import BuildContext
from archiver.engine.records import Decision
from archiver.errors import CampaignAborted
from archiver.policy import _codes as codes
from archiver.stages.descriptor import StageType


class AnonymizedFilter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["anonymized"] = "anonymized"
    on_violation: Literal["quarantine", "abort"] = "quarantine"


class Anonymized:
    name = "anonymized"

    def __init__(self, spec: AnonymizedFilter, campaign_id: str = "") -> None:
        self.abort = spec.on_violation == "abort"
        self.campaign_id = campaign_id

    def check(self, attempt: AttemptRecord) -> Decision | None:
        if attempt.anonymized is True:
            return None
        if self.abort:
            raise CampaignAborted(
                self.campaign_id,
                f"attempt {attempt.id} is not anonymized (on_violation: abort)",
            )
        return Decision(
            attempt_id=attempt.id, kind="quarantine", reason="not anonymized", attempt=attempt
        )


def _reads(spec: AnonymizedFilter) -> frozenset[RecordField]:
    return frozenset({"anonymized"})


def _build(spec: AnonymizedFilter, ctx: BuildContext) -> Anonymized:
    return Anonymized(spec, ctx.campaign_id)


STAGE = StageType(
    kind="filter", name="anonymized", options=AnonymizedFilter, factory=_build,
    summary="never archive an attempt that still carries personal data",
    reads=_reads, unique=codes.TWO_ANONYMIZED, inline=True, schema_def="anonymized_filter",
)

"""Filter ``anonymized``: an attempt that still carries personal data is never archived.

``on_violation: quarantine`` sets the attempt aside and keeps the run going;
``abort`` stops the campaign before anything of it is archived (the engine lists
a campaign completely before its first archive call, so nothing has been sent).
"""

from __future__ import annotations

from archiver.engine.backend import AttemptRecord, RecordField
from archiver.engine.records import Decision
from archiver.errors import CampaignAborted
from archiver.policy.model import AnonymizedFilter


class Anonymized:
    name = "anonymized"

    @classmethod
    def reads(cls, spec: AnonymizedFilter) -> frozenset[RecordField]:
        return frozenset({"anonymized"})

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

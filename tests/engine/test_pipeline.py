from __future__ import annotations

import pytest

from archiver.backends.campaign_archive import parse_record
from archiver.engine.campaign import next_batches
from archiver.engine.pipeline import Pipeline
from archiver.errors import CampaignAborted
from archiver.policy.model import Campaign, Connection, Policy
from archiver.stages.filters.anonymized import AnonymizedFilter
from archiver.stages.filters.outcome import OutcomeFilter
from archiver.stages.registry import BuildContext, build_pipeline_stages
from archiver.stages.transforms.retention import RetentionRule, RetentionTransform
from archiver.state.store import Store

CID = "c-1"


def make_policy(on_violation: str = "quarantine", use_record_value: bool = True) -> Policy:
    return Policy(
        name="t",
        connection=Connection(base_url="embedded"),
        campaigns=(Campaign(id=CID),),
        filters=(
            OutcomeFilter(approved=("SURVEY_TAKEN", "NO_ANSWER")),
            AnonymizedFilter(on_violation=on_violation),  # type: ignore[arg-type]
        ),
        transforms=(
            RetentionTransform(
                default_days=365,
                use_record_value=use_record_value,
                rules=(RetentionRule(outcome="SURVEY_TAKEN", days=730),),
            ),
        ),
    )


class Parsing:
    """The policy's pipeline fed as a run feeds it: records parsed by the backend."""

    def __init__(self, inner: Pipeline) -> None:
        self.inner = inner

    def decide(self, raw: object, *, fallback_id: str = ""):
        return self.inner.decide(parse_record(raw), fallback_id=fallback_id)


def pipeline(policy: Policy) -> Parsing:
    return Parsing(Pipeline(*build_pipeline_stages(BuildContext(policy=policy, campaign_id=CID))))


def record(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "att-1",
        "contactId": "con-1",
        "outcomeCode": "NO_ANSWER",
        "disposition": "ARCHIVED",
        "duration": 12,
        "anonymized": True,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


@pytest.mark.parametrize(
    ("raw", "kind", "reason", "days"),
    [
        (record(), "archive", "", 365),
        (record(retentionDays=None), "archive", "", 365),
        (record(retentionDays=90), "archive", "", 90),
        (record(outcomeCode="SURVEY_TAKEN"), "archive", "", 730),
        (record(outcomeCode="SURVEY_TAKEN", retentionDays=30), "archive", "", 30),
        (record(retentionDays=5000), "quarantine", "retentionDays 5000 outside 1..3650", None),
        (record(outcomeCode="DO_NOT_CALL"), "skip", "outcome DO_NOT_CALL not approved", None),
        (record(contactId=...), "quarantine", "malformed record: field `contactId` is missing", None),
        (record(contactId=None), "quarantine", "malformed record: field `contactId` is null", None),
        (record(duration="12"), "quarantine", "malformed record: field `duration`", None),
        (record(anonymized=False), "quarantine", "not anonymized", None),
        ("not an object", "quarantine", "record is not a JSON object", None),
    ],
)
def test_each_record_gets_the_decision_the_policy_says(raw, kind, reason, days):
    decision = pipeline(make_policy()).decide(raw, fallback_id="(no id)")
    assert decision.kind == kind
    assert reason in decision.reason
    if kind != "archive":
        assert decision.reason
    assert decision.retention_days == days


def test_record_value_ignored_unless_policy_says_so():
    decision = pipeline(make_policy(use_record_value=False)).decide(record(retentionDays=90))
    assert decision.retention_days == 365


def test_unapproved_outcome_is_skipped_before_anonymization_is_checked():
    decision = pipeline(make_policy()).decide(record(outcomeCode="BUSY", anonymized=False))
    assert decision.kind == "skip"


def test_unanonymized_record_aborts_campaign_when_policy_says_abort():
    with pytest.raises(CampaignAborted, match="att-9 is not anonymized"):
        pipeline(make_policy("abort")).decide(record(id="att-9", anonymized=False))


def test_malformed_record_without_id_uses_fallback():
    name = "(no id, sha256 0123456789abcdef)"
    decision = pipeline(make_policy()).decide(record(id=...), fallback_id=name)
    assert decision.attempt_id == name
    assert decision.kind == "quarantine"


def test_batches_hold_at_most_max_items_and_only_archive_decisions(tmp_path):
    p = pipeline(make_policy())
    raws = [record(id=f"a{i:02}", outcomeCode="BUSY" if i % 3 == 0 else "NO_ANSWER") for i in range(25)]
    store = Store(tmp_path)
    store.runs.start("r", "t", "")
    store.campaigns.set_status("r", CID, "listing")
    store.attempts.record_listed("r", CID, [p.decide(r) for r in raws])
    batches = list(next_batches(store, "r", CID, 7))
    sizes = [len(items) for _, items in batches]
    assert sizes == [7, 7, 2]
    expected = {f"a{i:02}" for i in range(25) if i % 3 != 0}
    batched_ids = [i.attempt_id for _, items in batches for i in items]
    assert sorted(batched_ids) == sorted(expected)
    # Each batch is committed before it is handed out, with its own key.
    assert [b.id for b in store.batches.open(CID)] == [b.id for b, _ in batches]
    assert len({b.idempotency_key for b, _ in batches}) == 3
    assert list(next_batches(store, "r", CID, 7)) == []

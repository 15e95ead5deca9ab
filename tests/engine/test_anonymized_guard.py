"""No archive item claims anonymized for a record that was not: the record's flag is kept,
sent as it is, and an unanonymized attempt never reaches a batch, whatever the policy."""

from __future__ import annotations

from archiver.backends.campaign_archive import parse_record
from archiver.backends.campaign_archive.payloads import archive_request
from archiver.engine.backend import AttemptRecord as Attempt
from archiver.engine.campaign import next_batches
from archiver.engine.context import as_record
from archiver.engine.pipeline import Pipeline
from archiver.engine.records import Decision
from archiver.policy.model import Campaign, Connection, Policy
from archiver.stages.filters.outcome import OutcomeFilter
from archiver.stages.registry import BuildContext, build_pipeline_stages
from archiver.state.attempts import PendingItem
from archiver.state.store import Store

CID = "c-anon"
POLICY = Policy(
    name="no-anonymized-filter",
    connection=Connection(base_url="embedded"),
    campaigns=(Campaign(id=CID),),
    filters=(OutcomeFilter(approved=("NO_ANSWER",)),),
)


def attempt(aid: str, anonymized: bool) -> Attempt:
    return Attempt(
        id=aid, contact_id=f"con-{aid}", outcome="NO_ANSWER", disposition="ARCHIVED",
        duration=7, anonymized=anonymized,
    )


def test_a_policy_without_the_filter_still_quarantines_an_unanonymized_record():
    pipeline = Pipeline(*build_pipeline_stages(BuildContext(policy=POLICY, campaign_id=CID)))
    raw = {"id": "a-1", "contactId": "c", "outcomeCode": "NO_ANSWER", "disposition": "X",
           "duration": 3, "anonymized": False}
    decision = pipeline.decide(parse_record(raw))
    assert (decision.kind, decision.reason) == ("quarantine", "not anonymized")
    assert pipeline.decide(parse_record({**raw, "anonymized": True})).kind == "archive"


def test_the_store_keeps_the_flag_and_never_batches_an_unanonymized_attempt(tmp_path):
    store = Store(tmp_path)
    store.runs.start("r", "t", "")
    # As a stage that let one through would record it: an archive decision.
    store.attempts.record_listed("r", CID, [
        Decision(attempt_id=a.id, kind="archive", retention_days=30, attempt=a)
        for a in (attempt("a-1", True), attempt("a-2", False), attempt("a-3", True))
    ])
    assert [i.attempt_id for i in store.attempts.unbatched("r", CID, "", 10)] == ["a-1", "a-3"]
    assert all(i.anonymized is True for i in store.attempts.unbatched("r", CID, "", 10))

    assert store.attempts.quarantine_unanonymized("r", CID) == 1
    assert ("quarantined", "not anonymized", 1) in store.attempts.reasons("r")[CID]
    batched = [i.attempt_id for _, items in next_batches(store, "r", CID, 10) for i in items]
    assert batched == ["a-1", "a-3"]
    store.close()


def test_an_archive_item_states_the_records_own_flag():
    line = PendingItem("a-1", "con-1", "NO_ANSWER", "ARCHIVED", 7, 30, "r", False)
    def body(item: PendingItem) -> list:
        return archive_request(
            CID, [as_record(item, "state")], force_cold_storage=False, delete_active=True
        )["items"]

    [item] = body(line)
    assert item["statusMatrix"]["anonymized"] is False
    [item] = body(line._replace(anonymized=True))
    assert item["statusMatrix"]["anonymized"] is True

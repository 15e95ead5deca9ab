"""Every method of the state store, the same on both databases (SQLite, PostgreSQL).

One implementation of the queries runs on both; these tests are what keeps a query
SQLite alone understands (or one PostgreSQL reads differently) from reaching a run.
"""

from __future__ import annotations

import json

import pytest

from archiver.engine.backend import AttemptRecord
from archiver.engine.records import Decision
from archiver.errors import ConfigError, StateError
from archiver.state.batches import StoredBatch
from archiver.state.schema import MIGRATIONS
from archiver.state.store import Store
from archiver.target import Target

TARGET = Target("campaign-archive", "embedded")


def decision(n: int, kind: str = "archive", *, anonymized: bool | None = True,
             aid: str | None = None) -> Decision:
    record = AttemptRecord(
        id=aid or f"a-{n:04d}", contact_id=f"c-{n}", outcome="NO_ANSWER", disposition="x",
        duration=n, anonymized=anonymized, handle={"list": "7"}, updated_at=f"2026-01-01T00:00:{n % 60:02d}Z",
    )
    reason = "" if kind == "archive" else f"{kind} reason"
    return Decision(record.id, kind, reason, 30 if kind == "archive" else None, record)  # type: ignore[arg-type]


def batch_of(store: Store, run: str, campaign: str, ids: list[str], seq: int = 1) -> StoredBatch:
    key = f"arc-{campaign}-{seq}-{run}"
    store.batches.prepare(key[4:], run, campaign, seq, key, f"comp-{seq}", ids)
    return StoredBatch(key[4:], run, campaign, seq, key, len(ids), "prepared")


def test_a_new_store_is_at_the_latest_version_and_reopens_without_migrating(open_store):
    first = open_store()
    assert first.schema_version == len(MIGRATIONS)
    first.runs.start("r1", "p", "h")
    first.close()
    again = open_store()
    assert again.schema_version == len(MIGRATIONS)
    assert [r["id"] for r in again.runs.recent()] == ["r1"]


def test_runs_are_listed_newest_first_and_found_by_prefix_without_wildcards(store):
    for run_id in ("r1-aa", "r1-ab", "r2-aa", "x%_1"):
        store.runs.start(run_id, "p", "h", TARGET)
    assert [r["status"] for r in store.runs.recent()] == ["running"] + ["interrupted"] * 3
    store.runs.finish("x%_1", "completed", 0, {"totals": {"listed": 2}})
    newest = store.runs.recent(limit=1)[0]
    assert newest["id"] == "x%_1" and newest["report"] == {"totals": {"listed": 2}}
    assert newest["target"] == TARGET.as_dict() and newest["exit_code"] == 0
    assert sorted(r["id"] for r in store.runs.starting_with("r1-a")) == ["r1-aa", "r1-ab"]
    assert [r["id"] for r in store.runs.starting_with("x%_")] == ["x%_1"]
    assert store.runs.starting_with("r3") == []


def test_a_store_belongs_to_its_first_target(store):
    store.runs.start("r1", "p", "h", TARGET)
    store.runs.check_target(TARGET)
    other = Target("campaign-archive", "api.example.com")
    with pytest.raises(ConfigError, match="belongs to campaign-archive at embedded"):
        store.runs.check_target(other)
    with pytest.raises(ConfigError, match="use another --state"):
        store.runs.start("r2", "p", "h", other)
    assert [r["id"] for r in store.runs.recent()] == ["r1"], "refused before anything was written"


def test_meta_and_running_totals_add_up_run_after_run(store):
    assert store.runs.meta("k") is None
    store.runs.set_meta("k", "v1")
    store.runs.set_meta("k", "v2")
    assert store.runs.meta("k") == "v2"
    store.runs.add_to_totals("p", [("archived", {"campaign": "c1"}, 3), ("runs", {}, 1)])
    store.runs.add_to_totals("p", [("archived", {"campaign": "c1"}, 2)])
    store.runs.add_to_totals("q", [("runs", {}, 1)])
    assert store.runs.totals("p") == [("archived", {"campaign": "c1"}, 5.0), ("runs", {}, 1.0)]
    assert store.runs.totals("q") == [("runs", {}, 1.0)]


def test_listing_keeps_the_decision_of_an_archived_or_batched_attempt(store):
    store.runs.start("r1", "p", "h")
    store.campaigns.set_status("r1", "c1", "listing")
    store.attempts.record_listed("r1", "c1", [decision(1), decision(2), decision(3, "skip"),
                                              decision(4, anonymized=False), decision(5, anonymized=None)])
    assert store.campaigns.status("r1", "c1") == ("listing", "")
    store.campaigns.set_status("r1", "c1", "listed", "all of it")
    assert store.campaigns.status("r1", "c1") == ("listed", "all of it")
    assert store.campaigns.status("r1", "c2") is None
    assert store.attempts.pending_count("r1", "c1") == 4
    assert store.attempts.quarantine_unanonymized("r1", "c1") == 2
    items = store.attempts.unbatched("r1", "c1", "", 10)
    assert [i.attempt_id for i in items] == ["a-0001", "a-0002"]
    first = items[0]
    assert (first.contact_id, first.outcome, first.duration, first.retention_days) == (
        "c-1", "NO_ANSWER", 1, 30)
    assert first.anonymized is True and json.loads(first.handle or "{}") == {"list": "7"}
    assert [i.attempt_id for i in store.attempts.unbatched("r1", "c1", "a-0001", 10)] == ["a-0002"]
    batch = batch_of(store, "r1", "c1", ["a-0001"])
    store.batches.done(batch, run_id="r1", archived_ids=["a-0001"], failed={}, response={"ok": 1})
    # Listed again by a later run with other values: the archived one keeps its own.
    store.runs.start("r2", "p", "h")
    store.attempts.record_listed("r2", "c1", [decision(1, "skip"), decision(2, "skip")])
    assert store.attempts.counts("r2") == {"c1": {"archived": 1, "skipped": 1}}
    assert store.batches.items(batch.id)[0].retention_days == 30


def test_batches_prepare_send_and_close_with_their_attempts(store):
    store.runs.start("r1", "p", "h")
    store.attempts.record_listed("r1", "c1", [decision(n) for n in range(1, 8)])
    ids = [f"a-{n:04d}" for n in range(1, 8)]
    assert store.batches.max_seq("r1", "c1") == 0
    one = batch_of(store, "r1", "c1", ids[:3], seq=1)
    two = batch_of(store, "r1", "c1", ids[3:6], seq=2)
    assert store.batches.max_seq("r1", "c1") == 2
    assert [b.id for b in store.batches.open("c1")] == [one.id, two.id]
    assert [i.attempt_id for i in store.batches.items(one.id)] == ids[:3]
    assert [i.attempt_id for i in store.attempts.unbatched("r1", "c1", "", 10)] == ids[6:]
    with pytest.raises(StateError, match="still open"):
        batch_of(store, "r1", "c1", ids[:3], seq=1)

    store.batches.done(
        one, run_id="r1", archived_ids=ids[:1], failed={ids[1]: "why 1", ids[2]: "why 2"},
        response={"archivedCount": 1}, events=[("evt-1", "webhook:x", "batch_archived", "{}")],
    )
    store.batches.failed(two, run_id="r1", error="503 again", sent=True)
    assert [b.id for b in store.batches.open("c1")] == [two.id], "sent: still open"
    assert store.batches.archived_by_run("r1") == {"c1": 1}
    assert store.attempts.counts("r1") == {"c1": {"archived": 1, "failed": 5, "pending": 1}}
    reasons = dict(((s, r), n) for s, r, n in store.attempts.reasons("r1")["c1"])
    assert reasons[("failed", "why 1")] == 1 and reasons[("failed", "why 2")] == 1
    assert reasons[("failed", "503 again")] == 3
    # Formed again (nothing of it archived): the same batch, opened anew.
    store.batches.release(two, keep=[ids[3]], run_id="r1")
    assert store.batches.open("c1") == []
    assert store.attempts.counts("r1")["c1"] == {"archived": 2, "failed": 2, "pending": 3}
    three = batch_of(store, "r1", "c1", ids[4:6], seq=3)
    store.batches.failed(three, run_id="r1", error="400 refused", sent=False, state="skipped")
    again = batch_of(store, "r1", "c1", ids[4:6], seq=3)
    assert [b.id for b in store.batches.open("c1")] == [again.id]
    store.batches.failed(again, run_id="r1", error="400 refused", sent=False)
    assert store.attempts.fail_pending("r1", "c1", "not archived in this run") == 1
    assert store.attempts.pending_count("r1", "c1") == 0
    store.attempts.record_listed("r1", "c2", [decision(9)])
    store.attempts.skip_pending("r1", "c2", "dialing (on_active: skip)")
    assert store.attempts.counts("r1")["c2"] == {"skipped": 1}
    assert store.attempts.fail_pending("r1", None, "x") == 0


def test_a_reconciled_batch_counts_apart_from_what_the_run_archived_and_listed(store):
    # r1 sends a batch of three and dies. r2 lists two of the campaign's attempts again:
    # a-0001 and a-0002 left the listing, archived by r1's request.
    store.runs.start("r1", "p", "h")
    store.attempts.record_listed("r1", "c1", [decision(n) for n in range(1, 5)])
    sent = batch_of(store, "r1", "c1", ["a-0001", "a-0002", "a-0003"])
    store.runs.start("r2", "p", "h")
    store.attempts.record_listed("r2", "c1", [decision(3), decision(4)])
    store.batches.release(sent, keep=["a-0001", "a-0002"], run_id="r2")
    assert store.batches.archived_by_run("r2") == {"c1": 2}
    assert store.batches.reconciled_by_run("r2") == {"c1": 2}
    # r2 did not list them: they stay r1's, archived, outside what r2 counts as listed.
    assert store.attempts.counts("r2") == {"c1": {"pending": 2}}
    assert store.attempts.counts("r1") == {"c1": {"archived": 2}}
    mine = batch_of(store, "r2", "c1", ["a-0003", "a-0004"], seq=2)
    store.batches.done(mine, run_id="r2", archived_ids=["a-0003", "a-0004"], failed={},
                       response={"archivedCount": 2})
    assert store.batches.archived_by_run("r2") == {"c1": 4}
    assert store.batches.reconciled_by_run("r2") == {"c1": 2}
    assert store.batches.reconciled_by_run("r1") == {}
    assert store.attempts.counts("r2") == {"c1": {"archived": 2}}


def test_the_outbox_delivers_in_order_and_keeps_what_it_could_not(store, tmp_path):
    events = [(f"evt-{n}", "audit_log:/a", "batch_archived", f'{{"n": {n}}}') for n in range(4)]
    store.events.enqueue(events)
    store.events.enqueue(events[:2])  # an event is enqueued once per sink
    store.events.enqueue([("evt-0", "webhook:x", "batch_archived", "{}")])
    pending = store.events.pending("audit_log:/a", limit=3)
    assert [e.event_id for e in pending] == ["evt-0", "evt-1", "evt-2"]
    assert pending[0].seq < pending[1].seq < pending[2].seq and pending[0].tries == 0
    receipt = json.dumps({"path": str(tmp_path / "a.jsonl"), "seq": 2, "hash": "h2"})
    store.events.delivered_many([(pending[0].seq, None), (pending[1].seq, receipt)])
    store.events.failed(pending[2].seq, "disk full")
    assert store.events.audit_checkpoint(tmp_path / "a.jsonl") == (2, "h2")
    assert store.events.audit_checkpoint(tmp_path / "b.jsonl") is None
    assert store.events.receipt_paths("audit_log:/a") == {str(tmp_path / "a.jsonl")}
    web = store.events.pending("webhook:x")[0]
    store.events.failed(web.seq, "410 gone", disable=True)
    assert store.events.summary() == {
        "audit_log:/a": {"delivered": 2, "pending": 2}, "webhook:x": {"disabled": 1},
    }
    assert store.events.undelivered_by_sink() == {"audit_log:/a": 2, "webhook:x": 1}
    assert store.events.sinks() == ["audit_log:/a", "webhook:x"]
    rows = {r["sink"]: r for r in store.events.by_sink()}
    assert rows["audit_log:/a"]["pending"] == 2 and rows["audit_log:/a"]["delivered"] == 2
    assert rows["webhook:x"]["disabled"] == 1 and rows["webhook:x"]["oldest_undelivered"]
    assert json.dumps(rows), "plain JSON values on both databases"
    assert store.events.drop_undelivered("webhook:x", "dropped by hand") == 1
    assert store.events.undelivered_by_sink() == {"audit_log:/a": 2}
    assert store.events.by_sink()[1]["dropped"] == 1


def test_renaming_a_sink_leaves_events_already_under_the_new_name(store):
    store.events.enqueue([("e1", "webhook#0", "k", "{}"), ("e2", "webhook#0", "k", "{}"),
                          ("e2", "webhook:x", "k", "{}")])
    assert store.events.rename_sink("webhook#0", "webhook:x") == 1
    assert store.events.summary() == {"webhook#0": {"pending": 1}, "webhook:x": {"pending": 2}}


def test_pauses_are_recorded_replaced_and_cleared(store):
    store.campaigns.record_pause("c1", "r1", "ACTIVE")
    store.campaigns.record_pause("c1", "r2", "PAUSED")
    store.campaigns.record_pause("c2", "r2", "ACTIVE")
    assert sorted(store.campaigns.pauses()) == [("c1", "PAUSED"), ("c2", "ACTIVE")]
    store.campaigns.clear_pause("c1")
    assert store.campaigns.pauses() == [("c2", "ACTIVE")]


def test_text_sorts_byte_by_byte_on_both_databases(store):
    """Batches are cut from the ids in sorted order and keyed by them: both databases
    must sort as Python does, whatever PostgreSQL's locale."""
    ids = ["a-1", "a_1", "A-2", "a1", "b", "B", "é", "z", "-x", "~"]
    store.runs.start("r1", "p", "h")
    store.attempts.record_listed("r1", "c1", [decision(n, aid=aid) for n, aid in enumerate(ids)])
    assert [i.attempt_id for i in store.attempts.unbatched("r1", "c1", "", 100)] == sorted(ids)
    assert [i.attempt_id for i in store.attempts.unbatched("r1", "c1", "a-1", 100)] == [
        i for i in sorted(ids) if i > "a-1"]


def test_a_store_written_by_a_newer_archiver_is_refused(open_store, location):
    first = open_store()
    if first.shared:
        with first.tx() as db:
            db.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS) + 1,))
    else:
        first._conn.backend.db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    first.close()
    with pytest.raises(StateError, match="newer than this archiver understands"):
        Store(location)


def test_watermarks_are_kept_per_campaign_and_source(store):
    assert store.campaigns.watermark("c1", "completed_contacts") is None
    store.campaigns.set_watermark("c1", "completed_contacts", "2026-11-01T00:00:00Z")
    store.campaigns.set_watermark("c1", "completed_contacts", "2026-11-02T00:00:00Z")
    store.campaigns.set_watermark("c1", "call_list_attempts", "x")
    assert store.campaigns.watermark("c1", "completed_contacts") == "2026-11-02T00:00:00Z"
    assert store.campaigns.watermark("c1", "call_list_attempts") == "x"
    assert store.campaigns.watermark("c2", "completed_contacts") is None


def test_what_was_dialing_is_kept_until_resumed(store):
    store.campaigns.record_dialing("c2", "r1", {"skills": [3, 1]})
    store.campaigns.record_dialing("c1", "r1", {"status": "ACTIVE"})
    store.campaigns.record_dialing("c1", "r2", {"status": "PAUSED"})
    assert store.campaigns.paused_dialing() == [("c1", {"status": "PAUSED"}), ("c2", {"skills": [3, 1]})]
    store.campaigns.clear_pause("c1")
    assert store.campaigns.paused_dialing() == [("c2", {"skills": [3, 1]})]


def test_an_audit_logs_checkpoint_is_found_past_a_page_of_other_logs_receipts(store, tmp_path):
    # Read newest first a page at a time: the log's last receipt, behind more than a page
    # of another log's, is still the one found; a log with none is None after the last page.
    page = 200
    events = [(f"evt-{n}", "audit_log:/a", "batch_archived", "{}") for n in range(page + 51)]
    store.events.enqueue(events)
    pending = store.events.pending("audit_log:/a", limit=len(events))

    def receipt(path: str, seq: int) -> str:
        return json.dumps({"path": str(tmp_path / path), "seq": seq, "hash": f"h{seq}"})

    store.events.delivered_many(
        [(pending[0].seq, receipt("a.jsonl", 1)), (pending[1].seq, receipt("a.jsonl", 2))]
        + [(e.seq, receipt("b.jsonl", n)) for n, e in enumerate(pending[2:], start=1)]
    )
    assert store.events.audit_checkpoint(tmp_path / "a.jsonl") == (2, "h2")
    assert store.events.audit_checkpoint(tmp_path / "b.jsonl") == (page + 49, f"h{page + 49}")
    assert store.events.audit_checkpoint(tmp_path / "c.jsonl") is None

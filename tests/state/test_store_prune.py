"""Pruning a store's finished history, with an injected clock, on both databases: old
history goes, new history and everything a later run needs stays."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archiver.clock import stamp
from archiver.errors import StateError
from archiver.state.batches import StoredBatch
from archiver.state.store import Store
from tests.state.test_store_backends import TARGET, batch_of, decision

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MONTH = timedelta(days=30)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(location, clock):
    opened = Store(location, clock=clock)
    yield opened
    opened.close()


def audit_receipt(path: Path, seq: int) -> str:
    return json.dumps({"path": str(path.resolve()), "seq": seq, "hash": f"h{seq}"})


def a_run(store: Store, run: str, campaign: str = "c1", *, first: int = 1,
          audit: Path | None = None, finish: bool = True) -> StoredBatch:
    """A run that lists 6 attempts (2 archived by one batch, 1 skipped, 1 quarantined,
    1 held, 1 failed), has one batch refused, delivers its events and finishes."""
    n = range(first, first + 6)
    ids = [f"a-{i:04d}" for i in n]
    store.runs.start(run, "p", "h", TARGET)
    store.campaigns.set_status(run, campaign, "listing")
    store.attempts.record_listed(run, campaign, [
        decision(n[0]), decision(n[1]), decision(n[2], "skip"), decision(n[3], "quarantine"),
        decision(n[4]), decision(n[5]),
    ])
    store.attempts.hold_pending(run, campaign, {ids[4]: "LIT-1"})
    batch = batch_of(store, run, campaign, [ids[0], ids[1], ids[5]])
    events = [(f"evt-{run}", "webhook:x", "batch_archived", "{}")]
    if audit is not None:
        events.append((f"evt-{run}", f"audit_log:{audit}", "batch_archived", "{}"))
    store.batches.done(batch, run_id=run, archived_ids=ids[:2], failed={ids[5]: "item failed"},
                       response={"archivedCount": 2}, events=events)
    sinks = ("webhook:x", f"audit_log:{audit}")
    seqs = [e.seq for sink in sinks for e in store.events.pending(sink)]
    store.events.delivered_many([
        (seq, audit_receipt(audit, seq) if audit is not None and i == 1 else None)
        for i, seq in enumerate(seqs)
    ])
    refused = batch_of(store, run, campaign, [], seq=2)
    store.batches.failed(refused, run_id=run, error="400 refused", sent=False)
    store.campaigns.set_status(run, campaign, "done")
    if finish:
        store.runs.finish(run, "completed", 0, {"totals": {}})
    return batch


def rows(store: Store, sql: str, *args) -> list[tuple]:
    return [tuple(r) for r in store.query(sql, args)]


def attempt_states(store: Store) -> dict[str, str]:
    return dict(rows(store, "SELECT attempt_id, state FROM attempts"))


def test_old_finished_history_goes_and_new_history_stays(store, clock, tmp_path):
    old_batch = a_run(store, "r-old", audit=tmp_path / "audit.jsonl")
    clock.advance(2 * MONTH)
    a_run(store, "r-new", first=11, audit=tmp_path / "audit.jsonl")
    clock.advance(timedelta(days=1))

    pruned = store.prune(MONTH)

    assert pruned.cutoff == stamp(T0 + 2 * MONTH + timedelta(days=1) - MONTH)
    assert pruned.removed == {"runs": 1, "campaigns": 1, "attempts": 4, "batches": 1, "outbox": 2}
    assert [r["id"] for r in store.runs.recent()] == ["r-new"]
    assert rows(store, "SELECT run_id FROM campaigns") == [("r-new",)]
    states = attempt_states(store)
    assert {a: s for a, s in states.items() if a < "a-0011"} == {
        "a-0001": "archived", "a-0002": "archived"}, "the old run's ledger stays, the rest goes"
    assert sorted(v for a, v in states.items() if a >= "a-0011") == [
        "archived", "archived", "failed", "held", "quarantined", "skipped"], "the new run whole"
    assert {b for (b,) in rows(store, "SELECT id FROM batches WHERE run_id = 'r-old'")} == {
        old_batch.id}, "the batch that archived stays, the refused one goes"
    assert len(rows(store, "SELECT id FROM batches WHERE run_id = 'r-new'")) == 2
    assert store.events.summary() == {
        "webhook:x": {"delivered": 1}, f"audit_log:{tmp_path / 'audit.jsonl'}": {"delivered": 1}}
    assert store.prune(MONTH).removed == dict.fromkeys(pruned.removed, 0), "nothing more to go"


def test_a_dry_run_counts_what_would_go_and_changes_nothing(store, clock, tmp_path):
    a_run(store, "r1", audit=tmp_path / "audit.jsonl")
    clock.advance(2 * MONTH)
    before = {t: rows(store, f"SELECT count(*) FROM {t}") for t in ("runs", "attempts", "outbox")}
    dry = store.prune(MONTH, dry_run=True)
    assert dry.dry_run and dry.removed["runs"] == 1 and dry.removed["attempts"] == 4
    assert {t: rows(store, f"SELECT count(*) FROM {t}") for t in before} == before
    assert store.prune(MONTH).removed == dry.removed


def test_an_archived_attempt_listed_again_after_a_prune_is_not_archived_again(store, clock):
    a_run(store, "r1")
    clock.advance(2 * MONTH)
    store.prune(MONTH)
    # A later run lists the same attempts again (an API that still lists archived ones).
    store.runs.start("r2", "p", "h", TARGET)
    store.attempts.record_listed("r2", "c1", [decision(n) for n in range(1, 7)])
    assert [i.attempt_id for i in store.attempts.unbatched("r2", "c1", "", 100)] == [
        "a-0003", "a-0004", "a-0005", "a-0006"], "only the ones never archived"
    assert attempt_states(store)["a-0001"] == "archived"


def test_an_open_batch_its_attempts_and_its_run_are_kept(store, clock):
    store.runs.start("r1", "p", "h", TARGET)
    store.attempts.record_listed("r1", "c1", [decision(1), decision(2), decision(3, "skip")])
    batch = batch_of(store, "r1", "c1", ["a-0001", "a-0002"])
    store.batches.failed(batch, run_id="r1", error="503", sent=True)  # fate unknown: open
    store.runs.finish("r1", "failed", 1, {})
    clock.advance(2 * MONTH)

    pruned = store.prune(MONTH)

    assert pruned.removed["runs"] == 0, "the run that holds an open batch stays"
    assert [b.id for b in store.batches.open("c1")] == [batch.id]
    assert [i.attempt_id for i in store.batches.items(batch.id)] == ["a-0001", "a-0002"]
    assert attempt_states(store) == {"a-0001": "failed", "a-0002": "failed", "a-0003": "skipped"}


def test_nothing_of_a_run_still_running_is_pruned(store, clock, tmp_path):
    a_run(store, "r1", audit=tmp_path / "a.jsonl", finish=False)
    clock.advance(6 * MONTH)
    assert store.prune(MONTH).removed == {
        "runs": 0, "campaigns": 0, "attempts": 0, "batches": 0, "outbox": 0}
    assert len(attempt_states(store)) == 6
    assert store.events.summary()["webhook:x"] == {"delivered": 1}


def test_undelivered_events_are_kept_however_old(store, clock):
    store.events.enqueue([(f"e{n}", "webhook:x", "batch_archived", "{}") for n in range(4)])
    e0, e1, e2, _ = store.events.pending("webhook:x")
    store.events.delivered(e0.seq)
    store.events.failed(e1.seq, "410 gone", disable=True)
    store.events.failed(e2.seq, "503")
    store.events.enqueue([("e9", "webhook:y", "batch_archived", "{}")])
    store.events.drop_undelivered("webhook:y", "dropped by hand")
    clock.advance(2 * MONTH)
    assert store.prune(MONTH).removed["outbox"] == 1
    assert store.events.summary() == {
        "webhook:x": {"disabled": 1, "pending": 2}, "webhook:y": {"dropped": 1}}


def test_the_audit_checkpoint_and_receipt_paths_read_the_same_after_a_prune(store, clock, tmp_path):
    logs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for n in range(1, 7):
        a_run(store, f"r{n}", first=10 * n, audit=logs[n % 2])
        clock.advance(timedelta(days=1))
    sinks = [f"audit_log:{p}" for p in logs]
    before = ([store.events.audit_checkpoint(p) for p in logs],
              [store.events.receipt_paths(s) for s in sinks])
    assert all(before[0]) and all(before[1])
    clock.advance(2 * MONTH)
    pruned = store.prune(MONTH)
    assert pruned.removed["runs"] == 6 and pruned.removed["outbox"] == 12 - 2
    assert ([store.events.audit_checkpoint(p) for p in logs],
            [store.events.receipt_paths(s) for s in sinks]) == before


def test_every_time_the_store_writes_comes_from_its_clock(store, clock, tmp_path):
    clock.at = datetime(2031, 7, 4, 8, 30, 15, 250000, tzinfo=UTC)
    a_run(store, "r1", audit=tmp_path / "a.jsonl")
    store.runs.start("r2", "p", "h", TARGET)
    store.campaigns.record_pause("c1", "r2", "ACTIVE")
    store.campaigns.record_dialing("c2", "r2", {"status": "ACTIVE"})
    store.campaigns.set_watermark("c1", "completed_contacts", "x")
    written = set()
    for table, columns in {
        "runs": "started_at, finished_at", "batches": "created_at, done_at",
        "outbox": "created_at, delivered_at", "pauses": "paused_at", "watermarks": "updated_at",
    }.items():
        for row in rows(store, f"SELECT {columns} FROM {table}"):
            written |= {v for v in row if v is not None}
    assert written == {"2031-07-04T08:30:15.250Z"}


def test_a_naive_clock_and_a_negative_age_are_refused(location):
    store = Store(location, clock=lambda: datetime(2026, 1, 1))
    try:
        with pytest.raises(ValueError, match="naive"):
            store.runs.start("r1", "p", "h")
        with pytest.raises(ValueError, match="negative"):
            store.prune(timedelta(days=-1))
    finally:
        store.close()


@pytest.mark.parametrize("answer", ["ok", '"ok"', "[1, 2]", "3", '{"path": 7}', "{"])
def test_a_receipt_that_names_no_file_is_no_checkpoint_and_is_pruned_as_any(
    tmp_path, clock, answer
):
    """A plugin sink's receipt can be any text: it names no audit log, whatever it is."""
    store = Store(tmp_path / "state", clock=clock)
    log = tmp_path / "a.jsonl"
    try:
        a_run(store, "r1", audit=log)
        store.events.enqueue([("evt-x", "plugin:x", "batch_archived", "{}")])
        (event,) = store.events.pending("plugin:x")
        store.events.delivered(event.seq, answer)
        assert store.events.audit_checkpoint(log) is not None
        assert store.events.receipt_paths("plugin:x") == set()
        clock.advance(2 * MONTH)
        assert store.prune(MONTH).removed["outbox"] == 2
        assert store.events.audit_checkpoint(log) is not None
    finally:
        store.close()


@pytest.mark.parametrize("seq", ['"abc"', "null", "1.5", "true"])
def test_an_audit_receipt_naming_no_line_is_a_damaged_store(tmp_path, clock, seq):
    store = Store(tmp_path / "state", clock=clock)
    log = tmp_path / "a.jsonl"
    try:
        a_run(store, "r1", audit=log)
        store.query("UPDATE outbox SET receipt = ? WHERE receipt IS NOT NULL",
                    (f'{{"path": "{log.resolve()}", "seq": {seq}, "hash": "h"}}',))
        with pytest.raises(StateError, match=(
            f"^the state store {tmp_path / 'state'} is damaged: the receipt for "
            f"{log.resolve()} names no line of it: seq .*; restore it from a backup"
        )):
            store.events.audit_checkpoint(log)
    finally:
        store.close()

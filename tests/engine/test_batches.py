"""Batches and their keys follow from the attempts alone, so two state stores that list the
same campaign form the same batches, with the same keys, ids and event ids."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

from archiver.engine.backend import AttemptRecord as Attempt
from archiver.engine.campaign import composition_of, idempotency_key, next_batches, request_of
from archiver.engine.payloads import batch_event_id
from archiver.engine.records import Decision
from archiver.governance.holds import HoldSet
from archiver.review.verdicts import ArchiveFields
from archiver.state.store import Store

CID = "c-batches"
SETTINGS = {"force_cold_storage": True, "delete_active": True}


def decisions(ids: list[str]) -> list[Decision]:
    return [
        Decision(
            attempt_id=aid, kind="archive", retention_days=30,
            attempt=Attempt(id=aid, contact_id=f"con-{aid}", outcome="BUSY",
                            disposition="X", duration=1, anonymized=True),
        )
        for aid in ids
    ]


def decided_lines(ids: list[str]) -> list[ArchiveFields]:
    """What the archive items of ``ids`` carry, as ``decisions`` decides them."""
    return [
        ArchiveFields(attempt_id=d.attempt_id, contact_id=d.attempt.contact_id,
                      outcome=d.attempt.outcome, disposition=d.attempt.disposition,
                      duration=d.attempt.duration, retention_days=30,
                      anonymized=d.attempt.anonymized)
        for d in decisions(ids) if d.attempt is not None
    ]


def listed_store(folder: Path, run_id: str, ids: list[str]) -> Store:
    store = Store(folder)
    store.runs.start(run_id, "t", "")
    store.attempts.record_listed(run_id, CID, decisions(ids))
    return store


def formed(store: Store, run_id: str, size: int) -> list[tuple[str, str, list[str]]]:
    return [
        (batch.id, batch.idempotency_key, [i.attempt_id for i in items])
        for batch, items in next_batches(store, run_id, CID, size, settings=SETTINGS)
    ]


def test_two_stores_form_the_same_batches_with_the_same_keys_and_ids(tmp_path):
    ids = [f"a-{n:03}" for n in range(23)]
    # Listed in different orders, by runs with different ids.
    one = listed_store(tmp_path / "one", "r-one", ids)
    two = listed_store(tmp_path / "two", "r-two", list(reversed(ids)))
    first, second = formed(one, "r-one", 10), formed(two, "r-two", 10)
    assert first == second
    assert [chunk for _, _, chunk in first] == [ids[:10], ids[10:20], ids[20:]]
    for _, key, chunk in first:
        request = request_of(decided_lines(chunk), SETTINGS)
        assert key == idempotency_key(CID, composition_of(chunk), request)
    one.close()
    two.close()


def test_a_batch_closed_for_certain_is_tried_again_under_the_same_key(tmp_path):
    ids = [f"a-{n:03}" for n in range(5)]
    store = listed_store(tmp_path / "s", "r1", ids)
    [(batch, _)] = list(next_batches(store, "r1", CID, 10, settings=SETTINGS))
    store.batches.failed(batch, run_id="r1", error="HTTP 403", sent=False)
    # The next run lists the same attempts again and forms the same batch: the key is
    # what a store that never saw the refusal would send, not a count of this store's.
    store.runs.start("r2", "t", "")
    store.attempts.record_listed("r2", CID, decisions(ids))
    fresh = listed_store(tmp_path / "fresh", "r9", ids)
    assert formed(store, "r2", 10) == formed(fresh, "r9", 10) == [(batch.id, batch.idempotency_key, ids)]
    assert [b.id for b in store.batches.open(CID)] == [batch.id], "one row, opened anew"
    store.close()
    fresh.close()


def test_a_batch_formed_again_with_another_request_goes_under_another_key(tmp_path):
    ids = [f"a-{n:03}" for n in range(5)]
    store = listed_store(tmp_path / "s", "r1", ids)
    [(batch, _)] = list(next_batches(store, "r1", CID, 10, settings=SETTINGS))
    store.batches.done(batch, run_id="r1", archived_ids=[],
                       failed={aid: "still listed after its batch" for aid in ids}, response=None)
    # The policy's retention changed before the next run: the same attempts, another
    # body. An API that keeps keys would refuse the first key with it.
    store.runs.start("r2", "t", "")
    store.attempts.record_listed("r2", CID, [
        dataclasses.replace(d, retention_days=400) for d in decisions(ids)
    ])
    [(again, items)] = list(next_batches(store, "r2", CID, 10, settings=SETTINGS))
    assert [i.attempt_id for i in items] == ids
    assert again.idempotency_key != batch.idempotency_key and again.id != batch.id
    # So do the batch settings an archive body carries.
    other = {**SETTINGS, "force_cold_storage": False}
    fresh = listed_store(tmp_path / "fresh", "r9", ids)
    [(cold, _)] = list(next_batches(fresh, "r9", CID, 10, settings=other))
    assert cold.idempotency_key != batch.idempotency_key
    store.close()
    fresh.close()


class Line:
    def __init__(self, attempt_id: str) -> None:
        self.attempt_id = attempt_id


def test_the_event_id_names_the_batch_and_what_it_archived():
    batch_id = "0123456789abcdef0123"
    both = batch_event_id(batch_id, [Line("a-2"), Line("a-1")])
    assert both == batch_event_id(batch_id, [Line("a-1"), Line("a-2")])
    assert both.startswith(f"evt-{batch_id}-")
    assert batch_event_id(batch_id, [Line("a-1")]) != both
    assert batch_event_id(batch_id, []) != both


def contact_store(folder: Path, run_id: str, contacts: dict[str, list[str]]) -> Store:
    """A run that listed these attempts, per contact (as cxone's calling-list attempts)."""
    store = Store(folder)
    store.runs.start(run_id, "t", "")
    store.attempts.record_listed(run_id, CID, [
        Decision(attempt_id=aid, kind="archive", retention_days=30,
                 attempt=Attempt(id=aid, contact_id=contact, outcome="Sale"))
        for contact, ids in contacts.items() for aid in ids
    ])
    return store


def whole(store: Store, run_id: str, size: int, holds: HoldSet | None = None) -> list[list[str]]:
    return [
        [i.attempt_id for i in items]
        for _, items in next_batches(store, run_id, CID, size, anonymized_only=False,
                                     holds=holds, whole_contacts=True)
    ]


def test_a_contact_is_never_split_between_batches_when_acting_takes_the_whole_contact(tmp_path):
    # Attempt ids interleave across contacts, as calls to several prospects do.
    contacts = {"P1": ["a-01", "a-04"], "P2": ["a-02", "a-03", "a-07"], "P3": ["a-05"],
                "P4": ["a-06", "a-08", "a-09", "a-10", "a-11"], "P5": ["a-12"]}
    store = contact_store(tmp_path / "s", "r", contacts)
    chunks = whole(store, "r", 3)
    # P1+P3 fit; P2 (3) alone; P4 (5) is larger than a batch and goes whole, alone.
    assert chunks == [["a-01", "a-04"], ["a-02", "a-03", "a-07"], ["a-05"],
                      ["a-06", "a-08", "a-09", "a-10", "a-11"], ["a-12"]]
    of = {aid: contact for contact, ids in contacts.items() for aid in ids}
    owners = [{of[a] for a in chunk} for chunk in chunks]
    assert sum(len(o) for o in owners) == len(set().union(*owners)) == len(contacts)
    # Deterministic from the attempts alone, as the attempt-id cut is.
    again = contact_store(tmp_path / "t", "r2", dict(reversed(list(contacts.items()))))
    assert whole(again, "r2", 3) == chunks
    store.close()
    again.close()


def test_one_held_attempt_holds_every_attempt_of_its_contact_when_acting_takes_the_whole(
    tmp_path,
):
    hold = tmp_path / "hold.yaml"
    hold.write_text("case: LIT-7\nplaced_by: legal@example.com\nattempts: [a-03]\n")
    holds = HoldSet([(hold, "hold.yaml")], today=date(2026, 12, 2))
    store = contact_store(tmp_path / "s", "r", {"P1": ["a-01"], "P2": ["a-02", "a-03"],
                                                "P3": ["a-04", "a-05"]})
    # a-05 was recorded held while listing (a hold read then); P3's a-04 stays with it.
    store.attempts.hold_pending("r", CID, {"a-05": "legal hold LIT-6 (old.yaml)"})
    assert whole(store, "r", 10, holds) == [["a-01"]]
    rows = dict(store.query(
        "SELECT attempt_id, reason FROM attempts WHERE state = 'held' ORDER BY attempt_id"
    ))
    assert rows == {
        "a-02": "legal hold LIT-7 (hold.yaml), on another attempt of contact P2",
        "a-03": "legal hold LIT-7 (hold.yaml)",
        "a-04": "legal hold LIT-6 (old.yaml), on another attempt of contact P3",
        "a-05": "legal hold LIT-6 (old.yaml)",
    }
    store.close()

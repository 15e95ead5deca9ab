"""Batches and their keys follow from the attempts alone, so two state stores that list the
same campaign form the same batches, with the same keys, ids and event ids."""

from __future__ import annotations

from pathlib import Path

from archiver.engine.backend import AttemptRecord as Attempt
from archiver.engine.campaign import composition_of, idempotency_key, next_batches
from archiver.engine.payloads import batch_event_id
from archiver.engine.records import Decision
from archiver.state.store import Store

CID = "c-batches"


def decisions(ids: list[str]) -> list[Decision]:
    return [
        Decision(
            attempt_id=aid, kind="archive", retention_days=30,
            attempt=Attempt(id=aid, contact_id=f"con-{aid}", outcome="BUSY",
                            disposition="X", duration=1, anonymized=True),
        )
        for aid in ids
    ]


def listed_store(folder: Path, run_id: str, ids: list[str]) -> Store:
    store = Store(folder)
    store.runs.start(run_id, "t", "")
    store.attempts.record_listed(run_id, CID, decisions(ids))
    return store


def formed(store: Store, run_id: str, size: int) -> list[tuple[str, str, list[str]]]:
    return [
        (batch.id, batch.idempotency_key, [i.attempt_id for i in items])
        for batch, items in next_batches(store, run_id, CID, size)
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
        assert key == idempotency_key(CID, composition_of(chunk))
    one.close()
    two.close()


def test_a_batch_closed_for_certain_is_tried_again_under_the_same_key(tmp_path):
    ids = [f"a-{n:03}" for n in range(5)]
    store = listed_store(tmp_path / "s", "r1", ids)
    [(batch, _)] = list(next_batches(store, "r1", CID, 10))
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

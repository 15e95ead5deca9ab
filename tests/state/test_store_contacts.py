"""Attempts chunked by whole contacts (a backend whose action takes a contact's every
attempt), the same on SQLite and PostgreSQL."""

from __future__ import annotations

from archiver.engine.backend import AttemptRecord
from archiver.engine.records import Decision
from archiver.target import Target

TARGET = Target("cxone", "embedded")


def listed(aid: str, contact: str) -> Decision:
    record = AttemptRecord(id=aid, contact_id=contact, outcome="Sale")
    return Decision(aid, "archive", "", 30, record)


def chunk(store, after: tuple[str, str], limit: int) -> list[str]:
    return [i.attempt_id for i in
            store.attempts.unbatched_contacts("r1", "c1", after, limit, anonymized_only=False)]


def test_chunks_hold_whole_contacts_and_a_contact_larger_than_a_chunk_alone(store):
    store.runs.start("r1", "p", "h", TARGET)
    store.attempts.record_listed("r1", "c1", [
        listed("a1", "P1"), listed("a5", "P1"), listed("a2", "P2"), listed("a3", "P2"),
        listed("a4", "P2"), listed("a6", "P3"),
    ])
    assert chunk(store, ("", ""), 3) == ["a1", "a5"]  # P2 does not fit beside P1
    assert chunk(store, ("P1", "a5"), 2) == ["a2", "a3", "a4"]  # P2 alone, whole
    assert chunk(store, ("P1", "a5"), 4) == ["a2", "a3", "a4", "a6"]
    assert chunk(store, ("P2", "a4"), 4) == ["a6"]
    assert chunk(store, ("P3", "a6"), 4) == []
    # Attempts already in a batch are not offered again.
    store.batches.prepare("b1", "r1", "c1", 1, "arc-b1", "comp", ["a2", "a3", "a4"])
    assert chunk(store, ("", ""), 2) == ["a1", "a5"]
    assert chunk(store, ("P1", "a5"), 1) == ["a6"]


def test_held_contacts_names_each_contact_with_a_held_attempt_once(store):
    store.runs.start("r1", "p", "h", TARGET)
    store.attempts.record_listed("r1", "c1", [listed("a1", "P1"), listed("a2", "P1"),
                                              listed("a3", "P2"), listed("a4", "P3")])
    store.attempts.hold_pending("r1", "c1", {"a2": "hold B", "a1": "hold A", "a4": "hold C"})
    assert store.attempts.held_contacts("r1", "c1", ["P1", "P2", "P1"]) == {"P1": "hold A"}
    assert store.attempts.held_contacts("r1", "c2", ["P1"]) == {}
    assert store.attempts.held_contacts("r1", "c1", []) == {}

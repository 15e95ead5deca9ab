"""Held attempts in the state store, the same on SQLite and PostgreSQL: a pending
attempt a hold now covers is recorded held instead of batched, and a later run's
listing decides it again, like a failed one."""

from __future__ import annotations

from archiver.engine.backend import AttemptRecord
from archiver.engine.records import Decision
from archiver.target import Target

TARGET = Target("campaign-archive", "embedded")


def listed(aid: str, kind: str = "archive", reason: str = "") -> Decision:
    record = AttemptRecord(id=aid, contact_id=f"c-{aid}", outcome="NO_ANSWER", anonymized=True)
    return Decision(aid, kind, reason, 30 if kind == "archive" else None, record)  # type: ignore[arg-type]


def states(store, run_id: str) -> dict[str, tuple[str, str]]:
    return {
        aid: (state, reason)
        for aid, state, reason in store.query(
            "SELECT attempt_id, state, reason FROM attempts WHERE run_id = ? ORDER BY attempt_id",
            (run_id,),
        )
    }


def test_pending_attempts_a_hold_covers_are_held_not_batched_and_decided_again_later(store):
    store.runs.start("r1", "p", "h", TARGET)
    store.attempts.record_listed("r1", "c1", [listed("a1"), listed("a2"), listed("a3"),
                                              listed("a4", "skip", "outcome not approved")])
    key = "arc-c1-1"
    store.batches.prepare(key[4:], "r1", "c1", 1, key, "comp", ["a3"])
    why = "legal hold LIT-1 (holds/lit.yaml)"
    # a3 is in a batch already, a4 skipped, zz never listed: only a1 and a2 are held.
    assert store.attempts.hold_pending("r1", "c1", {"a1": why, "a2": why, "a3": why, "a4": why,
                                                    "zz": why}) == 2
    assert store.attempts.hold_pending("r1", "c2", {"a1": why}) == 0  # another campaign's
    assert [i.attempt_id for i in store.attempts.unbatched("r1", "c1", "", 10)] == []
    assert store.attempts.counts("r1") == {"c1": {"held": 2, "pending": 1, "skipped": 1}}
    assert ("held", why, 2) in store.attempts.reasons("r1")["c1"]
    assert store.attempts.fail_pending("r1", "c1", "not archived") == 1  # a3; held stay held
    assert states(store, "r1")["a1"] == ("held", why)

    # The next run lists them again, the hold ended: decided anew, archivable.
    store.runs.start("r2", "p", "h", TARGET)
    store.attempts.record_listed("r2", "c1", [listed("a1"), listed("a2", "hold", why)])
    assert states(store, "r2") == {"a1": ("pending", ""), "a2": ("held", why)}
    assert [i.attempt_id for i in store.attempts.unbatched("r2", "c1", "", 10)] == ["a1"]

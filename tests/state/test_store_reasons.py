"""The report's reasons: per campaign, for one run, every state other than archived."""

from __future__ import annotations

from archiver.engine.backend import AttemptRecord as Attempt
from archiver.engine.records import Decision, DecisionKind
from archiver.state.store import Store


def _decision(n: int, kind: DecisionKind, reason: str) -> Decision:
    attempt = Attempt(
        id=f"a-{n:04d}", contact_id=f"c-{n}", outcome="NO_ANSWER", disposition="x",
        duration=1, anonymized=True,
    )
    retention = 30 if kind == "archive" else None
    return Decision(attempt.id, kind, reason, retention, attempt)


def test_reasons_group_a_runs_attempts_by_campaign_state_and_reason(store: Store):
    # `store`: a state folder, then a PostgreSQL database (tests/state/conftest.py).
    store.runs.start("old", "p", "")
    store.attempts.record_listed("old", "c1", [_decision(900, "skip", "from an older run")])
    store.runs.start("r", "p", "")
    store.attempts.record_listed("r", "c1", [
        _decision(1, "skip", "outcome X not approved"),
        _decision(2, "skip", "outcome X not approved"),
        _decision(3, "quarantine", "not anonymized"),
        _decision(4, "archive", ""),
        _decision(5, "archive", ""),
    ])
    store.attempts.record_listed("r", "c2", [
        _decision(6, "quarantine", "malformed record: field `id` is missing"),
        _decision(7, "skip", "outcome Y not approved"),
    ])
    # Attempt 5 is archived: it has no reason to report. Attempt 4 is still pending.
    with store.tx() as db:
        db.execute("UPDATE attempts SET state = 'archived' WHERE attempt_id = 'a-0005'")

    assert store.attempts.reasons("r") == {
        "c1": [
            ("skipped", "outcome X not approved", 2),
            ("pending", "", 1),
            ("quarantined", "not anonymized", 1),
        ],
        "c2": [
            ("quarantined", "malformed record: field `id` is missing", 1),
            ("skipped", "outcome Y not approved", 1),
        ],
    }
    assert store.attempts.reasons("old") == {"c1": [("skipped", "from an older run", 1)]}
    assert store.attempts.reasons("none") == {}

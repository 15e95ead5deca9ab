"""Lost archive answers against the key-less strict server, in the cases a listing
alone cannot settle: a server still at work on a call its client gave up on, and a
legal hold placed while a lost batch waits to be sent again."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.contract._cleanroom_server import Arrival, Faults, make_dataset
from tests.contract.test_cleanroom_server import Setup, start_server, write_policy

ONE = make_dataset(campaigns=1, attempts=40)
CID = next(iter(ONE))
ELIGIBLE = {
    r["id"] for r in ONE[CID]
    if r["anonymized"] and r["outcomeCode"] in ("SURVEY_TAKEN", "NO_ANSWER", "BUSY", "DISCONNECTED")
}


def setup_for(tmp_path: Path, faults: Faults | None = None, **edits: str) -> Setup:
    server = start_server(faults, ONE)
    policy = write_policy(tmp_path / "policy" / "p.yaml", server, max_attempts=3)
    text = policy.read_text().replace(
        "timeout_seconds: 5", "timeout_seconds: 1\n  connect_timeout_seconds: 1"
    )
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new)
    policy.write_text(text)
    return Setup(server, policy, tmp_path / "state", tmp_path)


def test_an_archive_call_the_server_applies_after_the_client_gave_up_is_not_sent_again(
    tmp_path: Path,
) -> None:
    # The server takes 4 s over the first archive call; the client's deadline is 2 s.
    # Still listed when the run looks, it is left open, not sent again: the next run
    # finds it applied.
    s = setup_for(tmp_path)

    def slow_first(arrival: Arrival) -> None:
        if arrival.endpoint == "archive" and arrival.stage == "arrived" and arrival.n == 1:
            time.sleep(4)

    s.server.on_call = slow_first
    try:
        first = s.run()
        time.sleep(5)  # the first call's thread finishes applying
        assert all(n == 1 for n in s.server.ledger.values()), s.server.ledger
        assert set(s.server.ledger) == ELIGIBLE
        assert len(s.server.calls("archive")) == 1
        assert first.exit_code == 1, first.output
        assert first.report["totals"]["failed"] == len(ELIGIBLE)
        s.server.on_call = None
        second = s.run()
        assert second.exit_code == 0, second.output
        assert second.report["totals"]["reconciled"] == len(ELIGIBLE)
        assert second.report["archived_in_this_run"] == 0
        assert len(s.server.calls("archive")) == 1
        assert all(n == 1 for n in s.server.ledger.values())
    finally:
        s.server.stop()


def test_a_hold_placed_while_a_lost_batch_waits_keeps_it_from_being_sent_again(
    tmp_path: Path,
) -> None:
    s = setup_for(
        tmp_path,
        **{"max_items: 200": "max_items: 5", "sinks:": "holds: [holds/h.yaml]\nsinks:",
           "max_in_flight: 4": "max_in_flight: 1"},
    )
    hold = s.policy.parent / "holds" / "h.yaml"
    hold.parent.mkdir()
    hold.write_text("case: LIT-1\nplaced_by: legal@example.com\nattempts: [nothing]\n")
    placed: dict[str, Any] = {}

    def watch(arrival: Arrival) -> None:
        if arrival.endpoint != "archive" or arrival.stage != "arrived":
            return
        if arrival.n == 1:
            # The first batch's call fails before it takes effect (a 503)...
            s.server.faults = Faults(unavailable_share=1.0, only=("archive",))
            # ... and a hold on the whole campaign is placed while it is in flight.
            hold.write_text(f"case: LIT-1\nplaced_by: legal@example.com\ncampaigns: ['{CID}']\n")
            placed["at"] = True
        elif arrival.n == 2:
            s.server.faults = Faults()

    s.server.on_call = watch
    try:
        run = s.run()
        assert placed
        assert not s.server.ledger, sorted(s.server.ledger)
        assert run.report["totals"]["held"] == len(ELIGIBLE), run.report["totals"]
        assert run.exit_code == 0, run.output
    finally:
        s.server.stop()


def test_a_batch_sent_again_after_a_lost_answer_counts_as_a_retry(tmp_path: Path) -> None:
    # 503 before the call takes effect: the engine settles and sends the batches again.
    s = setup_for(
        tmp_path, Faults(unavailable_share=0.5, only=("archive",)),
        **{"max_items: 200": "max_items: 5", "max_attempts: 3": "max_attempts: 6"},
    )
    try:
        run = s.run()
        sent = len(s.server.calls("archive"))
        batches = len(s.server.archive_batches)
        assert sent > batches, "no batch was sent again"
        assert all(n == 1 for n in s.server.ledger.values())
        stats = run.report["api"]["endpoints"]["archive"]
        assert stats["requests"] == sent
        assert stats["retries"] == sent - batches
    finally:
        s.server.stop()

"""A run that halts (an event a template cannot render) sends no further batch, and so
has nothing to pause a dialing campaign for: a campaign that finishes listing after the
halt leaves its dialing alone."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from archiver.engine.backend import AttemptRecord, Page
from archiver.engine.context import RunContext
from archiver.engine.runner import run_policy
from archiver.errors import TemplateError
from archiver.policy import load_policy
from archiver.target import Target
from tests.engine.fakes import RecordingBackend
from tests.support import policy_dict, write_policy

FIRST, DIALING = "camp-a", "camp-b"


class Backend(RecordingBackend):
    """Two campaigns of anonymized attempts; the second dials, and is listed only once the
    run has halted."""

    reports_dialing = True

    def __init__(self, halted: threading.Event) -> None:
        listing = {
            cid: [AttemptRecord(id=f"{cid}-{n}", contact_id=f"c-{n}", outcome="SURVEY_TAKEN",
                                anonymized=True, retention_days=30) for n in range(4)]
            for cid in (FIRST, DIALING)
        }
        super().__init__(listing, page_size=4)
        self.halted = halted
        self.paused: list[str] = []

    def pages(self, campaign_id: str, *, since: str | None) -> Iterator[Page]:
        if campaign_id == DIALING:
            assert self.halted.wait(30), "the run never halted"
        yield from super().pages(campaign_id, since=since)

    def dialing(self, campaign_id: str) -> Mapping[str, Any] | None:
        return {"status": "ACTIVE"} if campaign_id == DIALING else None

    def pause(self, campaign_id: str, dialing: Mapping[str, Any]) -> None:
        self.paused.append(campaign_id)

    def resume(self, campaign_id: str, dialing: Mapping[str, Any]) -> None:
        pass


class FailingSink:
    """Cannot render the first campaign's batch event."""

    name = "failing"
    events = frozenset({"run_started", "batch_archived", "run_finished"})

    def render(self, event: Mapping[str, Any]) -> str:
        if event["event"] == "batch_archived":
            raise TemplateError("event.json.j2", None, "rendered output is not plain JSON")
        return json.dumps(event, default=str)

    def deliver(self, event_id: str, body: str) -> str | None:
        return None


def test_a_campaign_listed_after_the_run_halted_is_not_paused(tmp_path: Path, monkeypatch):
    halted = threading.Event()
    halt = RunContext.halt

    def halt_and_tell(self: RunContext, reason: str) -> None:
        halt(self, reason)
        halted.set()

    monkeypatch.setattr(RunContext, "halt", halt_and_tell)
    doc = policy_dict([FIRST, DIALING])
    doc["batch"]["max_items"] = 2
    doc["connection"]["max_in_flight"] = 2  # both campaigns at once
    policy = load_policy(write_policy(tmp_path / "policy.yaml", doc))
    backend = Backend(halted)

    result = run_policy(policy, backend=backend, sinks=[FailingSink()],
                        state_dir=tmp_path / "state", target=Target("campaign-archive", "embedded"))

    assert result.exit_code == 1
    assert not any(a.startswith(DIALING) for a in backend.acted)
    assert backend.paused == [], "a halted run sends nothing: no campaign is paused for it"
    [dialing] = [c for c in result.report["campaigns"] if c["id"] == DIALING]
    assert dialing["status"] == "failed" and "not plain JSON" in dialing["reason"]

"""Legal holds, as a property of the engine: whatever is listed, whatever the holds and
the policy's filters, no held attempt reaches the backend's archive call or any sink
event, and every listed attempt ends in exactly one final state.

The engine runs in-process against a recording Backend (the engine's only interface to
an API) and a recording sink. A hold can also be placed while the run lists, before its
batches are formed.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from archiver.engine.backend import AttemptRecord, MalformedRecord
from archiver.engine.records import FINAL_STATES
from archiver.engine.runner import run_policy
from archiver.policy import load_policy
from archiver.target import Target
from tests.engine.fakes import RecordingBackend
from tests.support import APPROVED, policy_dict, write_policy

CAMPAIGNS = ("camp-a", "camp-b")
OUTCOMES = (*APPROVED, "ANSWERING_MACHINE", "DO_NOT_CALL")
CONTACTS = tuple(f"contact-{n}" for n in range(6))
IDS = tuple(f"att-{n:03d}" for n in range(40))


class RecordingSink:
    name = "recorder"
    events = frozenset({"run_started", "batch_archived", "run_finished"})

    def __init__(self) -> None:
        self.rendered: list[Mapping[str, Any]] = []
        self.delivered: list[str] = []

    def render(self, event: Mapping[str, Any]) -> str:
        self.rendered.append(event)
        return json.dumps(event, default=str)

    def deliver(self, event_id: str, body: str) -> str | None:
        self.delivered.append(body)
        return None


def strings_in(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, Mapping):
        return set().union(*(strings_in(v) for v in value.values()), set())
    if isinstance(value, list | tuple):
        return set().union(*(strings_in(v) for v in value), set())
    return set()


attempt = st.builds(
    lambda outcome, contact, anonymized, malformed: (outcome, contact, anonymized, malformed),
    st.sampled_from(OUTCOMES), st.sampled_from(CONTACTS), st.booleans(),
    st.integers(0, 19).map(lambda n: n == 0),
)
listing = st.dictionaries(st.sampled_from(IDS), st.tuples(st.sampled_from(CAMPAIGNS), attempt),
                          max_size=len(IDS))
hold = st.fixed_dictionaries({
    "attempts": st.lists(st.sampled_from(IDS), max_size=6, unique=True),
    "contacts": st.lists(st.sampled_from(CONTACTS), max_size=2, unique=True),
    "campaigns": st.lists(st.sampled_from(CAMPAIGNS), max_size=1, unique=True),
    "until": st.sampled_from([None, "tomorrow", "today", "yesterday"]),
})
filters = st.fixed_dictionaries({
    "approved": st.lists(st.sampled_from(APPROVED), min_size=1, unique=True),
    "max_items": st.integers(1, 7),
    "page_size": st.integers(1, 9),
})
late_hold = st.lists(st.sampled_from(IDS), max_size=8, unique=True)


def until_of(word: str | None, today: date) -> str | None:
    days = {"tomorrow": 1, "today": 0, "yesterday": -1}
    return None if word is None else (today + timedelta(days=days[word])).isoformat()


def hold_doc(n: int, spec: Mapping[str, Any], today: date) -> dict[str, Any]:
    doc: dict[str, Any] = {"case": f"CASE-{n}", "placed_by": "legal@example.com",
                           "attempts": spec["attempts"], "contacts": spec["contacts"],
                           "campaigns": spec["campaigns"]}
    if spec["until"] is not None:
        doc["until"] = until_of(spec["until"], today)
    return doc


def covered(aid: str, campaign: str, contact: str | None, specs: Sequence[Mapping[str, Any]]) -> bool:
    return any(
        (spec["until"] in (None, "tomorrow", "today"))
        and (aid in spec["attempts"] or campaign in spec["campaigns"]
             or (contact is not None and contact in spec["contacts"]))
        for spec in specs
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(listed=listing, holds=st.lists(hold, max_size=3), choice=filters, late=late_hold)
def test_no_held_attempt_is_ever_acted_on_or_sent_and_every_attempt_ends_once(
    listed, holds, choice, late
):
    records: dict[str, list[AttemptRecord | MalformedRecord]] = {c: [] for c in CAMPAIGNS}
    campaign_of: dict[str, str] = {}
    contact_of: dict[str, str | None] = {}
    for aid, (campaign, (outcome, contact, anonymized, malformed)) in sorted(listed.items()):
        campaign_of[aid] = campaign
        if malformed:
            records[campaign].append(MalformedRecord(aid, "outcome", "not a string"))
            contact_of[aid] = None
        else:
            records[campaign].append(AttemptRecord(
                id=aid, contact_id=contact, outcome=outcome, anonymized=anonymized,
                retention_days=30,
            ))
            contact_of[aid] = contact
    # The late hold covers attempts of the first campaign only; it is written once that
    # campaign is listed, before any of its batches is formed (campaigns run one at a time).
    late_ids = [a for a in late if campaign_of.get(a) == CAMPAIGNS[0]]
    # The day the holds are dated from, as the engine sees it during this example (not
    # when the module was imported: a suite running past midnight would see another).
    today = datetime.now(UTC).date()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        doc = policy_dict(list(CAMPAIGNS))
        doc["connection"]["max_in_flight"] = 1
        doc["source"]["page_size"] = choice["page_size"]
        doc["filters"][0]["approved"] = choice["approved"]
        doc["transforms"][0]["rules"] = []
        doc["batch"]["max_items"] = choice["max_items"]
        files = [f"holds/h{n}.yaml" for n in range(len(holds))] + ["holds/late.yaml"]
        doc["holds"] = files
        (folder / "holds").mkdir()
        for n, spec in enumerate(holds):
            (folder / files[n]).write_text(yaml.safe_dump(hold_doc(n, spec, today)))
        late_file = folder / "holds" / "late.yaml"
        late_file.write_text(yaml.safe_dump({"case": "LATE", "placed_by": "x@example.com"}))
        policy = load_policy(write_policy(folder / "policy.yaml", doc))

        def place_late_hold(campaign_id: str) -> None:
            if campaign_id == CAMPAIGNS[0] and late_ids:
                late_file.write_text(yaml.safe_dump({
                    "case": "LATE", "placed_by": "x@example.com", "attempts": late_ids,
                    "contacts": [], "campaigns": [], "until": until_of("tomorrow", today),
                }) + "# placed during the run\n")

        backend = RecordingBackend(records, choice["page_size"], place_late_hold)
        sink = RecordingSink()
        state = folder / "state"
        result = run_policy(policy, backend=backend, sinks=[sink], state_dir=state,
                            target=Target("campaign-archive", "embedded"))

        with sqlite3.connect(state / "state.db") as db:
            rows = db.execute("SELECT campaign_id, attempt_id, state, reason FROM attempts").fetchall()
    assume(datetime.now(UTC).date() == today)  # midnight passed during the run: dates moved

    held = {a for a in listed if covered(a, campaign_of[a], contact_of[a], holds)}
    acted = set(backend.acted)
    sent = set().union(*(strings_in(e) for e in sink.rendered), set())
    sent |= set().union(*(strings_in(json.loads(b)) for b in sink.delivered), set())

    assert not acted & held, "a held attempt reached Backend.act"
    assert not acted & set(late_ids), "an attempt held during the run reached Backend.act"
    assert not sent & (held | set(late_ids)), "a held attempt is named in a sink event"
    assert len(backend.acted) == len(acted), "no attempt acted on twice"

    # Exactly one final state per listed attempt, held where (and only where) a hold is.
    states = {aid: (campaign, state, reason) for campaign, aid, state, reason in rows}
    assert len(rows) == len(states) == len(listed)
    assert {a: c for a, (c, _, _) in states.items()} == campaign_of
    assert all(s in FINAL_STATES for _, s, _ in states.values())
    ended_held = {a for a, (_, s, _) in states.items() if s == "held"}
    assert held <= ended_held <= held | set(late_ids)
    for aid in ended_held:
        assert states[aid][2].startswith("legal hold ")
    for aid in set(late_ids) - held:
        assert states[aid][1] in ("held", "skipped", "quarantined")
    assert {a for a, (_, s, _) in states.items() if s == "archived"} == acted

    totals = result.report["totals"]
    assert totals["listed"] == len(listed)
    assert totals["held"] == len(ended_held)
    assert sum(totals[s] for s in FINAL_STATES) == totals["listed"]

"""The plugin's stages on their own: options, decisions, delivery once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from archiver_dnc.dnc import DncList, DncOptions, read_list
from archiver_dnc.events_file import EventsFile

from archiver.engine.backend import AttemptRecord
from archiver.errors import ConfigError


def _attempt(contact_id: str) -> AttemptRecord:
    return AttemptRecord(id="a-1", contact_id=contact_id, outcome="SURVEY_TAKEN",
                         disposition="Survey Taken", duration=60, anonymized=True)


def test_a_listed_contact_is_skipped_with_its_reason(tmp_path: Path) -> None:
    csv = tmp_path / "dnc.csv"
    csv.write_text("contact_id\nc-1\n c-2 \n\n")
    stage = DncList(read_list(csv, "contact_id"))
    decision = stage.check(_attempt("c-2"))
    assert decision is not None and decision.kind == "skip"
    assert decision.reason == "contact is on the do-not-call list"
    assert stage.check(_attempt("c-3")) is None


def test_a_list_without_the_column_is_refused(tmp_path: Path) -> None:
    csv = tmp_path / "dnc.csv"
    csv.write_text("phone\n555\n")
    with pytest.raises(ConfigError, match="no column `contact_id`"):
        read_list(csv, "contact_id")


def test_options_refuse_unknown_keys() -> None:
    with pytest.raises(ValueError, match="colunm"):
        DncOptions.model_validate({"path": "dnc.csv", "colunm": "id"})


def test_an_event_is_written_once_even_when_delivered_again(tmp_path: Path) -> None:
    sink = EventsFile(tmp_path / "events.jsonl", frozenset({"run_finished"}))
    body = sink.render({"event_id": "e-1", "event": "run_finished", "run_id": "r",
                        "counts": {"archived": 2}})
    sink.deliver("e-1", body)
    sink.deliver("e-1", body)  # a redelivery after a crash
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["event_id"] for line in lines] == ["e-1"]

"""Delivering the outbox quickly without giving anything up: the audit log takes a page of
events with one write and one fsync, still in order and never twice, and one sink's
slow delivery does not hold back another's."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from archiver.audit import AuditLog, verify_file
from archiver.audit import log as audit_log_module
from archiver.engine.outbox import Outbox
from archiver.errors import AuditError
from archiver.stages.sinks.audit_log import AuditLogStage
from archiver.state.store import Store
from archiver.templates import DEFAULT_AUDIT, load_template

AUDIT = "audit_log:audit.jsonl"


def events(n: int) -> list[tuple[str, str, str, str]]:
    return [(f"evt-{i:03d}", AUDIT, "batch_archived", json.dumps({"batch": i})) for i in range(n)]


def audit_stage(path: Path) -> AuditLogStage:
    return AuditLogStage(AuditLog(path), load_template(None, DEFAULT_AUDIT))


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_page_of_audit_events_is_one_write_and_one_fsync(tmp_path, monkeypatch):
    writes: list[int] = []
    real_write = audit_log_module._write

    def counting(fd: int, data: bytes) -> None:
        writes.append(data.count(b"\n"))
        real_write(fd, data)

    monkeypatch.setattr(audit_log_module, "_write", counting)
    store = Store(tmp_path / "state")
    store.events.enqueue(events(30))
    path = tmp_path / "audit.jsonl"
    Outbox(store, {AUDIT: audit_stage(path)}).drain()

    assert writes == [30]  # one append of 30 lines (and so one fsync), not 30 of one
    assert [line["event_id"] for line in lines(path)] == [f"evt-{i:03d}" for i in range(30)]
    assert [line["seq"] for line in lines(path)] == list(range(1, 31))
    assert verify_file(path).ok
    assert store.events.summary() == {AUDIT: {"delivered": 30}}
    assert store.events.audit_checkpoint(path) == (30, lines(path)[-1]["hash"])
    store.close()


def test_events_a_dead_run_already_wrote_are_not_written_again(tmp_path):
    """A run died after writing a page, before the store recorded it: the next run's page
    starts with those events; the log keeps one line each, in order."""
    path = tmp_path / "audit.jsonl"
    stage = audit_stage(path)
    pending = [(f"evt-{i}", json.dumps({"batch": i})) for i in range(5)]
    stage.log.append_many([(json.loads(body), event_id) for event_id, body in pending[:3]])

    receipts = stage.deliver_many(pending)

    assert [line["event_id"] for line in lines(path)] == [f"evt-{i}" for i in range(5)]
    assert verify_file(path).ok
    assert receipts[:2] == [None, None]
    assert [json.loads(r)["seq"] for r in receipts[2:] if r] == [3, 4, 5]


def test_a_failed_page_write_leaves_no_line_and_the_events_pending(tmp_path, monkeypatch):
    store = Store(tmp_path / "state")
    store.events.enqueue(events(4))
    path = tmp_path / "audit.jsonl"

    def full_disk(fd: int, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audit_log_module, "_write", full_disk)
    with pytest.raises(Exception, match="No space left"):
        Outbox(store, {AUDIT: audit_stage(path)}).drain()
    assert not path.exists() or path.read_text() == ""
    assert store.events.summary() == {AUDIT: {"pending": 4}}
    store.close()


class BlockingSink:
    """A webhook-like sink whose first delivery waits until the test lets it go."""

    name = "webhook"
    events = frozenset({"batch_archived"})

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.delivered: list[str] = []

    def render(self, event: Mapping[str, Any]) -> str:
        return "{}"

    def deliver(self, event_id: str, body: str) -> None:
        self.entered.set()
        assert self.release.wait(10)
        self.delivered.append(event_id)


def test_a_slow_sink_does_not_hold_back_another(tmp_path):
    store = Store(tmp_path / "state")
    slow = BlockingSink()
    path = tmp_path / "audit.jsonl"
    outbox = Outbox(store, {"webhook:slow": slow, AUDIT: audit_stage(path)})
    store.events.enqueue([("evt-1", "webhook:slow", "batch_archived", "{}")])
    first = threading.Thread(target=outbox.drain, kwargs={"wait": False})
    first.start()
    assert slow.entered.wait(10)
    try:
        # Another batch's events while the webhook is still on its first delivery.
        store.events.enqueue([("evt-2", "webhook:slow", "batch_archived", "{}"), *events(2)])
        outbox.drain(wait=False)
        assert [line["event_id"] for line in lines(path)] == ["evt-000", "evt-001"]
    finally:
        slow.release.set()
        first.join(10)
    assert slow.delivered == ["evt-1", "evt-2"]  # in order, by the thread already delivering
    store.close()


@pytest.mark.parametrize(("body", "problem"), [
    ("{not json", "is not JSON (Expecting property name"),
    ("[1, 2]", "is JSON list, not an object"),
    ('"text"', "is JSON str, not an object"),
])
def test_a_stored_audit_event_that_is_not_an_object_stops_the_log_in_one_line(
    tmp_path, body, problem
):
    store = Store(tmp_path / "state")
    store.events.enqueue([*events(2), ("evt-bad", AUDIT, "batch_archived", body), *events(4)[2:]])
    path = tmp_path / "audit.jsonl"
    stage = audit_stage(path)
    try:
        with pytest.raises(AuditError) as caught:
            Outbox(store, {AUDIT: stage}).drain()
        message = str(caught.value)
        assert message.startswith(f"event evt-bad for the audit log {path}, as the state store "
                                  f"keeps it, {problem}")
        assert message.endswith(f"`archiver runs outbox --drop {stage.identity}`")
        # Nothing of the page was written: the log is whole, nothing after the bad event.
        assert not path.exists() or verify_file(path).ok
        assert store.events.summary() == {AUDIT: {"pending": 5}}
        with pytest.raises(AuditError, match=r"^event evt-bad for the audit log"):
            stage.deliver("evt-bad", body)
    finally:
        store.close()

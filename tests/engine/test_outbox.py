"""The outbox stops a sink whose endpoint answered 410 Gone, keeping its other events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archiver.engine.outbox import Outbox
from archiver.errors import WebhookGone
from archiver.state.store import Store


class GoneSink:
    name = "webhook"
    events = frozenset({"batch_archived"})

    def __init__(self) -> None:
        self.tries: list[str] = []

    def render(self, event: Mapping[str, Any]) -> str:
        return "{}"

    def deliver(self, event_id: str, body: str) -> str | None:
        self.tries.append(event_id)
        raise WebhookGone("HTTP 410: gone")


def test_a_gone_endpoint_is_tried_once_per_run_and_no_event_is_dropped(tmp_path):
    store = Store(tmp_path)
    store.events.enqueue([(f"evt-{n}", "webhook", "batch_archived", "{}") for n in range(3)])
    sink = GoneSink()
    outbox = Outbox(store, {"webhook": sink})
    outbox.drain()
    outbox.drain()
    assert sink.tries == ["evt-0"]
    assert store.events.summary() == {"webhook": {"disabled": 1, "pending": 2}}
    store.close()

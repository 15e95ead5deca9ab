"""Outbox names of sinks: where each delivers, not where it sits in the policy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archiver.engine.outbox import sink_keys
from archiver.stages.sinks.webhook import webhook_identity


class FakeSink:
    events = frozenset({"batch_archived"})

    def __init__(self, name: str, identity: str | None = None) -> None:
        self.name = name
        if identity is not None:
            self.identity = identity

    def render(self, event: Mapping[str, Any]) -> str:
        return "{}"

    def deliver(self, event_id: str, body: str) -> str | None:
        return None


def test_reordering_or_inserting_sinks_keeps_every_sinks_name():
    a = FakeSink("webhook", "webhook:https://a.example/hook")
    log = FakeSink("audit_log", "audit_log:/srv/audit.jsonl")
    b = FakeSink("webhook", "webhook:https://b.example/hook")
    before = {k: v for k, v in sink_keys([a, log]).items()}
    after = sink_keys([b, log, a])
    assert {k: after[k] for k in before} == before
    assert list(after) == [b.identity, log.identity, a.identity]


def test_a_repeated_destination_and_a_sink_without_identity_get_distinct_names():
    a, again = FakeSink("webhook", "webhook:x"), FakeSink("webhook", "webhook:x")
    plugin, other_plugin = FakeSink("kafka"), FakeSink("kafka")
    assert list(sink_keys([a, plugin, again, other_plugin])) == [
        "webhook:x", "kafka:#0", "webhook:x#2", "kafka:#1",
    ]


def test_a_webhook_is_named_by_its_url_without_its_query_and_embedded_by_that_word():
    assert webhook_identity("embedded") == "webhook:embedded"
    assert webhook_identity("https://dw.example/h") == "webhook:https://dw.example/h"
    named = webhook_identity("https://dw.example/h?code=s3cr3t")
    assert named.startswith("webhook:https://dw.example/h?sha256:") and "s3cr3t" not in named

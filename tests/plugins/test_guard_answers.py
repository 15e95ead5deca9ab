"""A plugin writer's account of what it wrote goes into its batch's event, and so into
the audit line: it must be JSON that strict parsers accept, as a template's render must,
and no longer than a template may render. What a plugin sink renders is an event's body,
which the outbox stores and its deliver sends: text, held to the output bound a
template's render is held to."""

from __future__ import annotations

from typing import Any

import pytest

from archiver.errors import StageFailed
from archiver.stages.guard import GuardedSink
from archiver.templates.bounds import MAX_OUTPUT_CHARS

EVENT = {"event_id": "evt-1", "event": "batch_archived", "batch": {"id": "b-1"}}


class _Writer:
    name = "w"
    events: frozenset[str] = frozenset()

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def write_batch(self, campaign_id: str, batch_id: str, records: list[Any]) -> Any:
        return self.answer


@pytest.mark.parametrize(("answer", "why"), [
    ({"path": "a\ud800.jsonl"}, "surrogate"),
    ({"records": float("nan")}, "NaN"),
    ({"records": 1e400}, "Infinity"),
])
def test_a_writers_account_that_is_not_plain_json_fails_the_batch_naming_why(
    answer: dict[str, Any], why: str
) -> None:
    sink = GuardedSink(_Writer(answer), "sink", "w")
    with pytest.raises(StageFailed) as raised:
        sink.write_batch("c1", "b-1", [])
    assert "sink plugin 'w' failed in write_batch: it returned a dict, not a mapping" in str(
        raised.value)
    assert why in str(raised.value)


def test_a_writers_plain_account_is_passed_on() -> None:
    answer = {"path": "c1/b-1.jsonl.gz", "records": 2, "sha256": "ab" * 32}
    assert GuardedSink(_Writer(answer), "sink", "w").write_batch("c1", "b-1", []) == answer


def test_a_writers_account_longer_than_a_template_may_render_fails_the_batch() -> None:
    """Before: it was passed on, into a batch event whose audit line no template could
    render under the output bound."""
    sink = GuardedSink(_Writer({"note": "x" * MAX_OUTPUT_CHARS}), "sink", "w")
    with pytest.raises(StageFailed) as raised:
        sink.write_batch("c1", "b-1", [])
    assert str(raised.value) == (
        f"sink plugin 'w' failed in write_batch: it returned an account of what it wrote of "
        f"{MAX_OUTPUT_CHARS + 12:,} characters as JSON, past the output bound of 1,048,576 "
        "characters (1 MiB) of the audit line that carries it")


class _Renderer:
    name = "r"
    events = frozenset({"batch_archived"})

    def __init__(self, body: Any) -> None:
        self.body = body

    def render(self, event: Any) -> Any:
        return self.body


def test_a_body_past_the_output_bound_fails_the_render_naming_the_plugin_and_sizes() -> None:
    """Before: a body of any size was passed on, for the outbox to store and deliver to
    send (one of 200 MB was)."""
    sink = GuardedSink(_Renderer("x" * (MAX_OUTPUT_CHARS + 1)), "sink", "r")
    with pytest.raises(StageFailed) as raised:
        sink.render(EVENT)
    assert str(raised.value) == (
        "sink plugin 'r' failed to shape a batch_archived event: it returned a body of "
        "1,048,577 characters, past the output bound of 1,048,576 characters (1 MiB) a "
        "template's render is held to")


@pytest.mark.parametrize(("body", "shown"), [
    (b'{"id": "evt-1"}', "a bytes"), (None, "None"), ({"id": "evt-1"}, "a dict"),
])
def test_a_body_that_is_not_text_fails_the_render_naming_the_plugin(body: Any, shown: str) -> None:
    sink = GuardedSink(_Renderer(body), "sink", "r")
    with pytest.raises(StageFailed) as raised:
        sink.render(EVENT)
    assert str(raised.value) == (f"sink plugin 'r' failed to shape a batch_archived event: "
                                 f"it returned {shown}, not text (the event's body)")


def test_a_body_at_the_output_bound_is_passed_on() -> None:
    body = "x" * MAX_OUTPUT_CHARS
    assert GuardedSink(_Renderer(body), "sink", "r").render(EVENT) is body

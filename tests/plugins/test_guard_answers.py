"""A plugin writer's account of what it wrote goes into its batch's event, and so into
the audit line: it must be JSON that strict parsers accept, as a template's render must."""

from __future__ import annotations

from typing import Any

import pytest

from archiver.errors import StageFailed
from archiver.stages.guard import GuardedSink


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

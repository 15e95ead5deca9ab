"""Engine throughput: N generated attempts through the real filters, transforms and
batching into a counting sink, on one core. Prints attempts/s and peak RSS.

Batching is the run's own: decisions are written to a real state store page by
page, and batches are formed and committed from it (composition and idempotency
key) exactly as `archiver run` does before sending them. No HTTP is involved.

    python benchmarks/engine.py [--attempts 1000000]

Targets: at least 50,000 attempts/s and peak RSS under 100 MB.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archiver.backends.campaign_archive import parse_record
from archiver.engine.campaign import next_batches
from archiver.engine.noid import NoIdNames
from archiver.engine.pipeline import Pipeline
from archiver.policy.model import Campaign, Connection, Policy
from archiver.stages.filters.anonymized import AnonymizedFilter
from archiver.stages.filters.outcome import OutcomeFilter
from archiver.stages.registry import BuildContext, build_pipeline_stages
from archiver.stages.transforms.retention import RetentionRule, RetentionTransform
from archiver.state.store import Store

PAGE_SIZE = 1000  # decisions committed per transaction, as one listed page
OUTCOMES = ("SURVEY_TAKEN", "NO_ANSWER", "BUSY", "DISCONNECTED", "ANSWERING_MACHINE", "DO_NOT_CALL")


class CountingSink:
    """A sink that only counts what reaches it."""

    name = "counting"
    events = frozenset({"batch_archived"})

    def __init__(self) -> None:
        self.batches = 0
        self.items = 0

    def render(self, event: Mapping[str, Any]) -> str:
        self.items += int(event["size"])
        return ""

    def deliver(self, event_id: str, body: str) -> None:
        self.batches += 1


def generate(n: int) -> Iterator[dict[str, object]]:
    for i in range(n):
        record: dict[str, object] = {
            "id": f"att-{i:09d}",
            "contactId": f"con-{i:09d}",
            "outcomeCode": OUTCOMES[i % len(OUTCOMES)],
            "disposition": "COMPLETED",
            "duration": i % 600,
            "anonymized": i % 300 != 0,
        }
        if i % 5 == 0:
            record["retentionDays"] = None if i % 10 == 0 else 90
        if i % 1000 == 7:
            del record["contactId"]
        yield record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=1_000_000)
    args = parser.parse_args()
    policy = Policy(
        name="bench",
        connection=Connection(base_url="embedded"),
        campaigns=(Campaign(id="c"),),
        filters=(OutcomeFilter(approved=OUTCOMES[:4]), AnonymizedFilter()),
        transforms=(
            RetentionTransform(
                default_days=365, use_record_value=True,
                rules=(RetentionRule(outcome="SURVEY_TAKEN", days=730),),
            ),
        ),
    )
    pipeline = Pipeline(*build_pipeline_stages(BuildContext(policy=policy, campaign_id="c")))
    sink = CountingSink()
    kinds: dict[str, int] = {}

    def decisions() -> Iterator[Any]:
        unnamed = NoIdNames()  # as a run names records without an id
        for raw in generate(args.attempts):
            record = parse_record(raw)
            d = pipeline.decide(record, fallback_id=unnamed.name(record))
            kinds[d.kind] = kinds.get(d.kind, 0) + 1
            yield d

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder))
        store.runs.start("bench", policy.name, "")
        store.campaigns.set_status("bench", "c", "listing")
        page: list[Any] = []
        for decision in decisions():
            page.append(decision)
            if len(page) == PAGE_SIZE:
                store.attempts.record_listed("bench", "c", page)
                page = []
        if page:
            store.attempts.record_listed("bench", "c", page)
        for _batch, items in next_batches(store, "bench", "c", policy.batch.max_items):
            sink.deliver("", sink.render({"size": len(items)}))
        store.close()
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert sum(kinds.values()) == args.attempts
    assert sink.items == kinds.get("archive", 0)
    print(f"attempts        {args.attempts:,}")
    print(f"decisions       {', '.join(f'{k} {v:,}' for k, v in sorted(kinds.items()))}")
    print(f"batches         {sink.batches:,} (max {policy.batch.max_items} items)")
    print(f"wall time       {elapsed:.2f} s")
    print(f"throughput      {args.attempts / elapsed:,.0f} attempts/s (target >= 50,000)")
    print(f"peak RSS        {peak_mb:.1f} MB (target < 100 MB)")


if __name__ == "__main__":
    main()

"""Sink ``events_file``: each event the run emits, one JSON line in a file.

A sink receives events through archiver's outbox: ``render`` shapes an event when it
is recorded, ``deliver`` sends it and may be called again for the same event after a
crash, so it writes an event id at most once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from archiver.engine.building import BuildContext
from archiver.policy.paths import OutsideRepository
from archiver.stages.descriptor import CheckContext, Finding, StageType

EVENTS = frozenset({"run_started", "batch_archived", "run_finished"})


class EventsFileOptions(BaseModel):
    """Options of the ``events_file`` sink."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(description="The file, relative to the policy file.")
    events: list[str] = Field(default=sorted(EVENTS), min_length=1,
                              description="Event kinds to keep.")


class EventsFile:
    name = "events_file"

    def __init__(self, path: Path, events: frozenset[str]) -> None:
        self.path = path
        self.events = events
        self.identity = f"events_file:{path}"  # the outbox's name for it

    def render(self, event: Mapping[str, Any]) -> str:
        return json.dumps({"event_id": event["event_id"], "event": event["event"],
                           "run_id": event["run_id"], "counts": event.get("counts")},
                          sort_keys=True)

    def deliver(self, event_id: str, body: str) -> None:
        if event_id in self._written():
            return  # delivered before a crash: never twice
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(body + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def _written(self) -> set[str]:
        if not self.path.exists():
            return set()
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return {json.loads(line)["event_id"] for line in lines if line.strip()}


def _build(options: EventsFileOptions, ctx: BuildContext) -> EventsFile:
    return EventsFile(ctx.path(options.path, what="events file"), frozenset(options.events))


def _check(options: EventsFileOptions, ctx: CheckContext) -> Iterable[Finding]:
    try:
        ctx.confine(options.path, "events file")
    except OutsideRepository as err:
        yield Finding(("path",), str(err))
    for i, kind in enumerate(options.events):
        if kind not in EVENTS:
            yield Finding(("events", i), f"unknown event `{kind}`; one of: "
                          f"{', '.join(sorted(EVENTS))}")


STAGE = StageType(
    kind="sink", name="events_file", options=EventsFileOptions, factory=_build,
    summary="every event of a run as one JSON line in a file", check=_check, events=EVENTS,
)

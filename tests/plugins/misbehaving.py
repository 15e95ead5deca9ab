"""Stage types written the way a careless plugin author writes them, for runs of the real
command: ``install(folder)`` makes them an installed distribution (a ``.dist-info`` with
entry points in the ``archiver.stages`` group) that a run finds on PYTHONPATH.

Each type takes ``mode`` (how it misbehaves), ``every`` (on every n-th call it gets; the
others behave) and ``after`` (the first calls behave), and behaves once the file ``fixed`` names exists (its options, and
so a sink's outbox name, unchanged). A sink with ``log`` appends each event id it is
asked to deliver to that file, before it does whatever its mode says.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from archiver.engine.backend import AttemptRecord
from archiver.engine.records import Decision
from archiver.errors import AuthError, StageDeliveryFailed, StateError
from archiver.stages.descriptor import StageType
from archiver.templates.bounds import MAX_OUTPUT_CHARS

FILTER, TRANSFORM, SINK = "misbehaving_filter", "misbehaving_transform", "misbehaving_sink"
# A sink's modes that misbehave in render (SHAPING) or write_batch only: deliver behaves.
SHAPING = frozenset({"huge_body", "bytes_body"})
DELIVERS = SHAPING | {"huge_account", "hang_write"}


class Options(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: str
    every: int = 1
    after: int = 0
    fixed: str = ""
    log: str = ""
    hanging: str = ""  # mode hang: this file is made as it starts hanging


class _Counted:
    def __init__(self, options: Options) -> None:
        self.options = options
        self._calls = 0
        self._lock = threading.Lock()

    def misbehaves(self) -> bool:
        with self._lock:
            self._calls += 1
            if self.options.fixed and Path(self.options.fixed).exists():
                return False
            return self._calls > self.options.after and self._calls % self.options.every == 0


class Cancelled(BaseException):
    """A BaseException of the plugin's own, as some libraries' cancellations are."""


def _raise(mode: str, options: Options) -> None:
    if mode == "system_exit":
        raise SystemExit(0)
    if mode == "keyboard_interrupt":
        raise KeyboardInterrupt
    if mode == "base_exception":
        raise Cancelled("gave up")
    # One of archiver's own errors, as a plugin that calls archiver's code (or imitates
    # it) raises: credentials refused (exit 78), a broken state store, a delivery to retry.
    if mode == "auth_error":
        raise AuthError("client credentials refused", status=401)
    if mode == "state_error":
        raise StateError("the state store is damaged")
    if mode == "delivery_failed":
        raise StageDeliveryFailed("try again later")
    if mode == "hang":
        if options.hanging:
            Path(options.hanging).touch()
        time.sleep(3600)


class Filter(_Counted):
    name = FILTER

    def check(self, attempt: AttemptRecord) -> Any:
        if not self.misbehaves():
            return None
        mode = self.options.mode
        _raise(mode, self.options)
        if mode == "text":
            return "skip"
        if mode == "other_attempt":
            return Decision(attempt_id=attempt.id + "-x", kind="skip", reason="other", attempt=attempt)
        if mode == "archive":  # lets the attempt through, its record now saying anonymized
            return Decision(attempt_id=attempt.id, kind="archive", retention_days=30,
                            attempt=attempt._replace(anonymized=True))
        if mode == "hold":
            return Decision(attempt_id=attempt.id, kind="hold", reason="says who", attempt=attempt)
        if mode == "reason_none":
            return Decision(attempt_id=attempt.id, kind="skip", reason=None,  # type: ignore[arg-type]
                            attempt=attempt)
        if mode == "handle":  # writes into the record it was given, and passes it
            handle: Any = attempt.handle
            for key in handle:
                handle[key] = f"{handle[key]}-x"
            return None
        if mode == "handle_swap":  # the same, with the externalId of the attempt before
            handle = attempt.handle
            handle["externalId"], self.previous = getattr(self, "previous", handle["externalId"]), handle["externalId"]
            return None
        raise AssertionError(f"no filter mode {mode}")


class Transform(_Counted):
    name = TRANSFORM

    def apply(self, decision: Decision) -> Any:
        if not self.misbehaves():
            return decision
        mode = self.options.mode
        _raise(mode, self.options)
        attempt = decision.attempt
        assert attempt is not None
        if mode == "none":
            return None
        if mode == "other_attempt":  # the decision it was given, now about another attempt
            decision.attempt_id = decision.attempt_id + "-x"
            return decision
        if mode == "other_contact":
            decision.attempt = attempt._replace(contact_id="c-0000")
            return decision
        if mode == "retention_negative":
            decision.retention_days = -5
            return decision
        if mode == "retention_bool":
            decision.retention_days = True
            return decision
        raise AssertionError(f"no transform mode {mode}")


class Sink(_Counted):
    name = SINK
    events = frozenset({"run_started", "batch_archived", "run_finished"})

    def render(self, event: Mapping[str, Any]) -> str:
        if self.options.mode == "hang_render" and "batch" in event and self.misbehaves():
            _raise("hang", self.options)
        if self.options.mode == "forge" and "batch" in event:  # writes into the event
            event["batch"]["attempt_ids"] = ["att-forged"]  # type: ignore[index]
        body = json.dumps({"id": event["event_id"], "event": event["event"]})
        if self.options.mode in SHAPING and "batch" in event and self.misbehaves():
            if self.options.mode == "bytes_body":
                return body.encode()  # type: ignore[return-value]
            # One character past the bound archiver's templates are held to.
            return body[:-1] + ', "padding": "' + "x" * (MAX_OUTPUT_CHARS - len(body) - 14) + '"}'
        return body

    def deliver(self, event_id: str, body: str) -> Any:
        if self.options.log:
            with open(self.options.log, "a") as log:
                log.write(event_id + "\n")
        if self.options.mode in DELIVERS or not self.misbehaves():
            return None
        mode = self.options.mode
        _raise(mode, self.options)
        if mode == "dict_receipt":
            return {"delivered": event_id}
        raise AssertionError(f"no sink mode {mode}")


class Writer(Sink):
    """A sink that keeps archived records too (an ArchiveWriter), writing into the records
    it is given ("forge"), answering None ("writer_none"), an account of what it wrote
    just longer, as JSON, than the bound of archiver's templates ("huge_account"), or
    never returning from a write ("hang_write")."""

    def write_batch(self, campaign_id: str, batch_id: str,
                    records: list[dict[str, Any]]) -> dict[str, Any] | None:
        if self.options.mode == "hang_write":
            if self.misbehaves():
                _raise("hang", self.options)
            return {"records": len(records)}
        if self.options.mode == "writer_none":
            return None if self.misbehaves() else {"records": len(records)}
        if self.options.mode == "huge_account":
            if self.misbehaves():
                return {"note": "x" * MAX_OUTPUT_CHARS}  # 12 characters more as JSON
            return {"records": len(records)}
        for record in records:
            record["contact_id"], record["anonymized"] = "c-forged", True
        return {"records": len(records)}


class Many(Sink):
    """A sink that takes a page of events at once (``deliver_many``), answering no
    receipt at all when it misbehaves ("many_short")."""

    def deliver_many(self, events: list[tuple[str, str]]) -> list[str | None]:
        if self.options.log:
            with open(self.options.log, "a") as log:
                log.writelines(event_id + "\n" for event_id, _ in events)
        return [] if self.misbehaves() else [None] * len(events)


def _factory(cls: type[_Counted]) -> Any:
    def build(options: Options, ctx: Any) -> _Counted:
        if options.mode == "build_system_exit":
            raise SystemExit(0)
        made = cls
        if cls is Sink and options.mode in ("forge", "writer_none", "huge_account", "hang_write"):
            made = Writer
        elif cls is Sink and options.mode == "many_short":
            made = Many
        built = made(options)
        if options.mode == "build_events_none":
            built.events = None  # type: ignore[attr-defined]
        if options.mode == "build_method_none":  # the kind's method, set to None
            setattr(built, {Filter: "check", Transform: "apply", Sink: "deliver"}[cls], None)
        return built

    return build


def _check(options: Options, ctx: Any) -> tuple[()]:
    if options.mode == "check_system_exit":
        raise SystemExit(0)
    return ()


TYPES = {
    FILTER: StageType(kind="filter", name=FILTER, options=Options, factory=_factory(Filter),
                      check=_check),
    TRANSFORM: StageType(kind="transform", name=TRANSFORM, options=Options,
                         factory=_factory(Transform)),
    SINK: StageType(kind="sink", name=SINK, options=Options, factory=_factory(Sink),
                    events=Sink.events),
}
FILTER_TYPE, TRANSFORM_TYPE, SINK_TYPE = TYPES[FILTER], TYPES[TRANSFORM], TYPES[SINK]


def install(folder: Path, *, exits_on_import: bool = False) -> Path:
    """A distribution in ``folder`` whose entry points are these types; put ``folder`` on
    PYTHONPATH (with the repository, where this module is) and a run loads them.
    ``exits_on_import``: one more entry point, ``exits_on_import``, whose module raises
    SystemExit as it is imported."""
    dist = folder / "misbehaving_stages-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: misbehaving-stages\nVersion: 1.0\n")
    points = [f"{name} = {__name__}:{kind.upper()}_TYPE\n"
              for name, kind in ((FILTER, "filter"), (TRANSFORM, "transform"), (SINK, "sink"))]
    if exits_on_import:
        (folder / "exits_on_import.py").write_text("raise SystemExit(0)\n")
        points.append("exits_on_import = exits_on_import:STAGE\n")
    (dist / "entry_points.txt").write_text("[archiver.stages]\n" + "".join(points))
    return folder

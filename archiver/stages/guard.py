"""A third-party stage behind a guard: what it raises becomes one of archiver's errors,
named with the stage, instead of a traceback; and what it returns is checked before
anything acts on it. One of archiver's own errors raised in a plugin's call is the
plugin's failure too, reported as such (an ``AuthError`` there is no reason to say the
credentials were refused, nor a ``StateError`` that the state store is broken).

A filter or transform that raises stops its campaign (``StageFailed``); a sink that
raises while shaping an event stops it too, and one that raises while delivering keeps
the event for a later run (``StageDeliveryFailed``, transient) like a webhook that is
down. archiver's own stages are not wrapped: what they raise is archiver's.

A filter answers None or a ``skip`` or ``quarantine`` decision of the attempt it was
asked about; a transform answers a decision of the attempt it was given (``archive``,
``skip`` or ``quarantine``), carrying the record as listed; a decision's reason is text
and its retention None (for ``archive``: the policy's default) or whole days in 1..3650.
Any other answer fails its campaign as a raise does: an ``archive`` from a filter would
pass the filters after it and the anonymized guard, another record would put values
nobody listed into archive bodies, and another id would leave the attempt asked about
without a state. A sink's receipts and a writer's account of what it wrote are checked
likewise, and a sink is handed copies of its own (see ``GuardedSink``). What a sink
renders is an event's body, which the outbox stores and ``deliver`` sends: it must be
text of at most MAX_OUTPUT_CHARS characters (1 MiB), the output bound a template's render
is held to (``archiver.templates.bounds``); a writer's account, carried into the batch's
audit line, is held to the same bound. Past it, the call fails as a raise there does.
"""

from __future__ import annotations

import copy
import json
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from archiver.engine.backend import AttemptRecord
from archiver.engine.records import MAX_RETENTION_DAYS as MAX_DAYS
from archiver.engine.records import MIN_RETENTION_DAYS as MIN_DAYS
from archiver.engine.records import Decision
from archiver.engine.stoppable import STOP_GRACE_SECONDS, LeftRunning, call_stoppable
from archiver.errors import ArchiverError, StageDeliveryFailed, StageFailed
from archiver.templates.bounds import MAX_OUTPUT_CHARS
from archiver.templates.output import NotPlainJson, plain_json

T = TypeVar("T")


def _call(what: str, fail: type[ArchiverError], run: Callable[[], T]) -> T:
    try:
        return run()
    except BaseException as err:
        if a_ctrl_c(err):
            raise
        raise fail(f"{what}: {described(err)}") from err


def a_ctrl_c(err: BaseException) -> bool:
    """Whether ``err``, raised in a plugin's code, may be the user's Ctrl-C, to be let
    through. SystemExit, KeyboardInterrupt or a BaseException of the plugin's own is
    otherwise the plugin's failure, not a request to exit: a run stops on a signal through
    its own handler, and its campaigns run in threads no Ctrl-C reaches. Only where
    Python's own SIGINT handler is in place, on the main thread, can it be a Ctrl-C."""
    return (isinstance(err, KeyboardInterrupt)
            and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler)


def described(err: BaseException) -> str:
    """An error as a line names it: its type, and what it says when it says anything."""
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


class _Guard:
    """Everything but the guarded calls is the stage's own (``name``, ``events``,
    ``identity``, ``write_batch`` ...), so protocol checks see the stage itself."""

    def __init__(self, inner: Any, kind: str, type_name: str) -> None:
        self._inner = inner
        self._type_name = type_name
        self._what = f"{kind} plugin {type_name!r}"
        self._busy = False  # in a call (a stop may leave one running: ``in_call``)

    def _run(self, what: str, fail: type[ArchiverError], run: Callable[[], T]) -> T:
        self._busy = True
        try:
            return _call(what, fail, run)
        finally:
            self._busy = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._inner, name, value)


def _shown(value: object) -> str:
    return "None" if value is None else f"a {type(value).__name__}"


def _checked(
    what: str, result: object, attempt_id: str, record: AttemptRecord | None,
    kinds: tuple[str, ...],
) -> Decision:
    """``result`` as a decision about ``attempt_id`` of one of ``kinds``, with a reason
    (text) and a retention (None or whole days in range) the store keeps, carrying
    ``record`` (set when the stage left it out); StageFailed saying how it is not."""
    if not isinstance(result, Decision):
        raise StageFailed(f"{what} returned {_shown(result)} for attempt {attempt_id}, "
                          "not a Decision")
    if result.attempt_id != attempt_id:
        raise StageFailed(f"{what} answered for attempt {attempt_id} with a decision about "
                          f"attempt {result.attempt_id!r}")
    if result.kind not in kinds:
        raise StageFailed(f"{what} decided {result.kind} for attempt {attempt_id}; it may "
                          f"decide {' or '.join(kinds)}")
    if not isinstance(result.reason, str):
        raise StageFailed(f"{what} gave attempt {attempt_id} a reason that is "
                          f"{_shown(result.reason)}, not text")
    days = result.retention_days
    if days is not None and not (
        isinstance(days, int) and not isinstance(days, bool) and MIN_DAYS <= days <= MAX_DAYS
    ):
        raise StageFailed(f"{what} gave attempt {attempt_id} a retention of {days!r} days, "
                          f"not a whole number in {MIN_DAYS}..{MAX_DAYS}")
    listed = result.attempt
    if listed is None or listed is record or record is None:
        result.attempt = listed or record  # the store keeps the listed values with a decision
        return result
    if not isinstance(listed, AttemptRecord):
        raise StageFailed(f"{what} replaced the listed record of attempt {attempt_id} with "
                          f"{_shown(listed)}")
    changed = [f for f in AttemptRecord._fields if getattr(listed, f) != getattr(record, f)]
    if changed:
        raise StageFailed(f"{what} changed the listed record of attempt {attempt_id} "
                          f"({', '.join(changed)}): a stage decides, it does not change what "
                          "was listed")
    return result


class GuardedFilter(_Guard):
    def check(self, attempt: AttemptRecord) -> Decision | None:
        result: object = self._run(f"{self._what} failed on attempt {attempt.id}",
                                   StageFailed, lambda: self._inner.check(attempt))
        if result is None:
            return None
        return _checked(self._what, result, attempt.id, attempt, ("skip", "quarantine"))


class GuardedTransform(_Guard):
    def apply(self, decision: Decision) -> Decision:
        # Taken before the call: a transform may change the decision it is given.
        attempt_id, record = decision.attempt_id, decision.attempt
        return _checked(
            self._what,
            self._run(f"{self._what} failed on attempt {attempt_id}", StageFailed,
                      lambda: self._inner.apply(decision)),
            attempt_id, record, ("archive", "skip", "quarantine"),
        )


# A sink's other calls the engine makes, and what their failure is.
_SINK_CALLS: Mapping[str, type[ArchiverError]] = {
    "deliver_many": StageDeliveryFailed, "write_batch": StageFailed,
    "discard_batch": StageFailed,
}


class GuardedSink(_Guard):
    """A plugin's sink. What it is handed (an event to render, a batch's records to
    write) is a copy of its own: what it writes into it no other sink sees.

    Given the run's stop (``stop_on``), a call of it still going STOP_GRACE_SECONDS after
    the stop is left running, and fails: a delivery's event is kept for a later run, an
    event it was shaping is kept unrendered, a batch it was writing stays open. It is not
    asked to do that again in that run (its call may still be going)."""

    def __init__(self, inner: Any, kind: str, type_name: str) -> None:
        super().__init__(inner, kind, type_name)
        self._stop: threading.Event | None = None
        # Why, by what it was doing (delivering, shaping, writing): a call left running.
        self._left: dict[str, str] = {}

    def stop_on(self, stop: threading.Event) -> None:
        self._stop = stop

    def _stoppable(self, what: str, fail: type[ArchiverError], work: str, doing: str,
                   run: Callable[[], T]) -> T:
        """``run``, a call of the sink's that does ``work`` (delivering, shaping, writing);
        ``doing`` says what it was at when it is left running."""
        if work in self._left:
            raise fail(self._left[work])
        stop = self._stop
        if stop is None:
            return _call(what, fail, run)
        try:
            return call_stoppable(lambda: _call(what, fail, run), stop,
                                  f"sink plugin {self._type_name}")
        except LeftRunning:
            self._left[work] = (f"{self._what} did not return from {doing} within "
                                f"{STOP_GRACE_SECONDS:g} s of the stop: left running")
            raise fail(self._left[work]) from None

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        fail = _SINK_CALLS.get(name)
        if fail is None or not callable(value):
            return value

        def guarded(*args: Any, **kwargs: Any) -> Any:
            what = f"{self._what} failed in {name}"
            # Its own copy: what a writer is handed (the batch's records) the next writer,
            # archiver's file sink say, is handed too.
            args, kwargs = copy.deepcopy(args), copy.deepcopy(kwargs)
            if name == "deliver_many":
                events = args[0] if args else ()
                doing = f"delivering {events[0][0] if events else 'nothing'}"
            else:  # write_batch, discard_batch
                doing = f"writing batch {args[1] if len(args) > 1 else '?'} ({name})"
            work = "delivering" if name == "deliver_many" else "writing"
            result = self._stoppable(what, fail, work, doing, lambda: value(*args, **kwargs))
            if name == "write_batch":
                return _written(what, result)
            if name == "deliver_many":
                _check_receipts(what, result, len(events))
            return result

        return guarded

    def render(self, event: Mapping[str, Any]) -> str:
        # Its own copy: the sinks after it (the audit log) render the same event.
        mine = copy.deepcopy(event)
        kind = event.get("event")
        what = f"{self._what} failed to shape a {kind} event"
        result: object = self._stoppable(what, StageFailed, "shaping",
                                         f"shaping a {kind} event",
                                         lambda: self._inner.render(mine))
        return _body(what, result)

    def deliver(self, event_id: str, body: str) -> str | None:
        what = f"{self._what} failed to deliver {event_id}"
        result: object = self._stoppable(what, StageDeliveryFailed, "delivering",
                                         f"delivering {event_id}",
                                         lambda: self._inner.deliver(event_id, body))
        if result is not None and not isinstance(result, str):
            # Whether it delivered is unknown: kept, and delivered again (at least once).
            raise StageDeliveryFailed(
                f"{what}: it returned {_shown(result)}, not a receipt (text) or None")
        return result


_BOUND = f"the output bound of {MAX_OUTPUT_CHARS:,} characters ({MAX_OUTPUT_CHARS // 2**20} MiB)"


def _body(what: str, result: object) -> str:
    """``render`` answers the event's body, which the outbox stores and ``deliver``
    sends: text of at most MAX_OUTPUT_CHARS characters, as a template's render is. Any
    other answer fails as a raise does: the event is kept unrendered."""
    if not isinstance(result, str):
        raise StageFailed(f"{what}: it returned {_shown(result)}, not text (the event's body)")
    if len(result) > MAX_OUTPUT_CHARS:
        raise StageFailed(f"{what}: it returned a body of {len(result):,} characters, past "
                          f"{_BOUND} a template's render is held to")
    return result


def _written(what: str, result: object) -> Mapping[str, Any]:
    """``write_batch`` answers what it wrote, JSON values under text keys: the batch's
    event carries it (``files``), and the audit log vouches for it, so it must be JSON
    that strict parsers accept, as a template's render must (``plain_json``), and no
    longer as JSON than a template may render (MAX_OUTPUT_CHARS): an audit line carrying
    more could never be rendered, and its batch's event would stay kept for good."""
    refused = f"{what}: it returned {_shown(result)}, not a mapping of what it wrote " \
              "(JSON values under text keys)"
    if not isinstance(result, Mapping) or not all(isinstance(k, str) for k in result):
        raise StageFailed(refused)
    try:
        text = json.dumps(dict(result))
    except (TypeError, ValueError, RecursionError):
        raise StageFailed(refused) from None
    if len(text) > MAX_OUTPUT_CHARS:
        raise StageFailed(f"{what}: it returned an account of what it wrote of {len(text):,} "
                          f"characters as JSON, past {_BOUND} of the audit line that "
                          "carries it")
    try:
        plain_json(text)
    except NotPlainJson as err:
        raise StageFailed(f"{refused}: {err}") from None
    return result


def _check_receipts(what: str, result: object, events: int) -> None:
    """``deliver_many`` answers a receipt (text) or None per event it was given."""
    if not isinstance(result, list | tuple) or len(result) != events or any(
            r is not None and not isinstance(r, str) for r in result):
        raise StageDeliveryFailed(f"{what}: it returned {_shown(result)}, not a receipt "
                                  f"(text) or None for each of the {events} events")


def is_plugin(stage: object) -> bool:
    """Whether ``stage`` is a plugin's, behind a guard."""
    return isinstance(stage, _Guard)


def in_call(stages: Iterable[object]) -> str | None:
    """The first of ``stages`` in one of its calls ("filter plugin 'x'"), if any: the one
    a stop left running."""
    return next((s._what for s in stages if isinstance(s, _Guard) and s._busy), None)


GUARDS: dict[str, type[_Guard]] = {
    "filter": GuardedFilter, "transform": GuardedTransform, "sink": GuardedSink,
}

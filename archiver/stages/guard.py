"""A third-party stage behind a guard: what it raises that is not one of archiver's own
errors becomes one, named with the stage, instead of a traceback.

A filter or transform that raises stops its campaign (``StageFailed``); a sink that
raises while shaping an event stops it too, and one that raises while delivering keeps
the event for a later run (``StageDeliveryFailed``, transient) like a webhook that is
down. archiver's own stages are not wrapped: what they raise is archiver's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from archiver.engine.backend import AttemptRecord
from archiver.engine.records import Decision
from archiver.errors import ArchiverError, StageDeliveryFailed, StageFailed

T = TypeVar("T")


def _call(what: str, fail: type[ArchiverError], run: Callable[[], T]) -> T:
    try:
        return run()
    except ArchiverError:
        raise
    except Exception as err:
        raise fail(f"{what}: {type(err).__name__}: {err}") from err


class _Guard:
    """Everything but the guarded calls is the stage's own (``name``, ``events``,
    ``identity``, ``write_batch`` ...), so protocol checks see the stage itself."""

    def __init__(self, inner: Any, kind: str, type_name: str) -> None:
        self._inner = inner
        self._what = f"{kind} plugin {type_name!r}"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._inner, name, value)


class GuardedFilter(_Guard):
    def check(self, attempt: AttemptRecord) -> Decision | None:
        result: Decision | None = _call(f"{self._what} failed on attempt {attempt.id}",
                                        StageFailed, lambda: self._inner.check(attempt))
        return result


class GuardedTransform(_Guard):
    def apply(self, decision: Decision) -> Decision:
        result: Decision = _call(f"{self._what} failed on attempt {decision.attempt_id}",
                                 StageFailed, lambda: self._inner.apply(decision))
        return result


# A sink's other calls the engine makes, and what their failure is.
_SINK_CALLS: Mapping[str, type[ArchiverError]] = {
    "deliver_many": StageDeliveryFailed, "write_batch": StageFailed,
    "discard_batch": StageFailed,
}


class GuardedSink(_Guard):
    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        fail = _SINK_CALLS.get(name)
        if fail is None or not callable(value):
            return value

        def guarded(*args: Any, **kwargs: Any) -> Any:
            return _call(f"{self._what} failed in {name}", fail, lambda: value(*args, **kwargs))

        return guarded

    def render(self, event: Mapping[str, Any]) -> str:
        result: str = _call(f"{self._what} failed to shape a {event.get('event')} event",
                            StageFailed, lambda: self._inner.render(event))
        return result

    def deliver(self, event_id: str, body: str) -> str | None:
        result: str | None = _call(f"{self._what} failed to deliver {event_id}",
                                   StageDeliveryFailed,
                                   lambda: self._inner.deliver(event_id, body))
        return result


GUARDS: dict[str, type[_Guard]] = {
    "filter": GuardedFilter, "transform": GuardedTransform, "sink": GuardedSink,
}

"""Waiting for a call that may never return (a plugin's), so that a stop still stops.

A thread blocked in a call cannot be interrupted; what a run can do is stop waiting for
it. :func:`call_stoppable` runs the call on a daemon thread of its own (in a copy of the
caller's context, so its log records keep their campaign) and waits for it. Once ``stop``
is set the call gets ``STOP_GRACE_SECONDS`` more; then it is left running and
:class:`LeftRunning` is raised. A daemon thread does not keep the process from exiting.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# What a call in flight when a run is stopped gets before the run goes on without it (the
# calls that resume paused campaigns get as long).
STOP_GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.1


class LeftRunning(Exception):
    """The run was stopped and the call did not return within the grace: left running."""


def call_stoppable(run: Callable[[], T], stop: threading.Event, name: str) -> T:
    """``run()``'s result, or what it raised; LeftRunning when ``stop`` was set and it did
    not return within STOP_GRACE_SECONDS of that. ``name``: its thread's name."""
    returned: list[T] = []
    raised: list[BaseException] = []
    done = threading.Event()

    def work() -> None:
        try:
            returned.append(run())
        except BaseException as err:  # handed to the caller, raised in its thread
            raised.append(err)
        finally:
            done.set()

    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(work,), name=name, daemon=True).start()
    deadline: float | None = None
    while not done.wait(_POLL_SECONDS):
        if stop.is_set():
            deadline = deadline if deadline is not None else time.monotonic() + STOP_GRACE_SECONDS
            if time.monotonic() >= deadline:
                raise LeftRunning(name)
    if raised:
        raise raised[0]
    return returned[0]

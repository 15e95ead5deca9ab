"""Fault injection for crash tests, off unless ``ARCHIVER_FAILPOINT`` is set.

``ARCHIVER_FAILPOINT=name:n`` kills the process with SIGKILL the n-th time the
named point is reached, so tests can prove a run survives dying exactly there.
``name:n:full`` instead makes every later write to a file fail from there on (the
process's file size limit drops to 0, so writes fail with EFBIG), as when the disk
fills up at that moment: the run must end with a message, and the next one must
pick up where it stopped. Points: see ``POINTS`` (a new point is added there).

A malformed value is a :class:`UsageError` naming the variable: ``check()`` at the
start of a run, or the first ``hit()``; never an error at import.
"""

from __future__ import annotations

import os
import resource
import signal
import threading
from dataclasses import dataclass
from functools import cache

from archiver.errors import UsageError

ENV = "ARCHIVER_FAILPOINT"
POINTS = frozenset(
    {
        "page_listed",
        "batch_prepared",
        "batch_posted",
        "batch_recorded",
        "archive_written",
        "event_delivering",
        "event_delivered",
        "campaign_paused",
        "run_finishing",
    }
)
ACTIONS = ("kill", "full")


@dataclass
class Failpoint:
    name: str
    left: int
    action: str


def parse(value: str) -> Failpoint | None:
    """``NAME[:N[:ACTION]]``; None for an empty value. Raises UsageError naming the variable."""
    if not value:
        return None
    name, _, rest = value.partition(":")
    count, _, action = rest.partition(":")
    action = action or "kill"
    if name not in POINTS:
        known = ", ".join(sorted(POINTS))
        raise UsageError(f"{ENV}={value}: unknown point {name!r} (points: {known})")
    if count and not (count.isdigit() and int(count) > 0):
        raise UsageError(f"{ENV}={value}: {count!r} is not a positive count (NAME:N)")
    if action not in ACTIONS:
        raise UsageError(f"{ENV}={value}: unknown action {action!r} (actions: {', '.join(ACTIONS)})")
    return Failpoint(name, int(count or 1), action)


@cache
def _armed() -> Failpoint | None:
    return parse(os.environ.get(ENV, ""))


_lock = threading.Lock()


def check() -> None:
    """Refuse a malformed ``ARCHIVER_FAILPOINT`` before a run starts. Call it from the main
    thread: a ``full`` failpoint ignores SIGXFSZ here, so a write past the limit fails
    instead of killing the process."""
    point = _armed()
    if point is not None and point.action == "full":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def hit(name: str) -> None:
    point = _armed()
    if point is None or name != point.name:
        return
    with _lock:
        point.left -= 1
        if point.left != 0:
            return
        if point.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if threading.current_thread() is threading.main_thread():
            check()
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))

"""Fault injection for crash tests, off unless ``ARCHIVER_FAILPOINT`` is set.

``ARCHIVER_FAILPOINT=name:n`` kills the process with SIGKILL the n-th time the
named point is reached, so tests can prove a run survives dying exactly there.
Points: page_listed, batch_prepared, batch_posted, batch_recorded,
event_delivering, event_delivered, campaign_paused, run_finishing.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "ARCHIVER_FAILPOINT"

_name, _, _count = os.environ.get(ENV, "").partition(":")
_left = int(_count or 1) if _name else 0
_lock = threading.Lock()


def hit(name: str) -> None:
    global _left
    if name != _name:
        return
    with _lock:
        _left -= 1
        if _left <= 0:
            os.kill(os.getpid(), signal.SIGKILL)

"""The cxone backend's calls are bounded like the campaign archive client's: a run that
stops cuts the calls in flight, and an answer is read only up to its size limit."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from archiver.backends.cxone import http
from archiver.errors import CallAbandoned, TerminalApiError
from archiver.simulator.cxone import Behaviour


def test_cancel_cuts_a_call_in_flight(start_sim, backend_for) -> None:
    sim = start_sim(Behaviour())
    # A read timeout far past the answer's delay: only a cut ends the call early.
    backend = backend_for(sim, timeout_seconds=60.0, max_attempts=1)
    backend.check()  # token and discovery answered at once
    sim.set(latency_seconds=5.0)
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(backend.api.get, "dispositions", {"skip": "0", "top": "10"})
        time.sleep(0.5)  # sent by now; if not, it must not be sent at all
        backend.cancel()
        with pytest.raises(CallAbandoned):
            call.result(timeout=30)
    # Nothing is sent once the run is stopping.
    with pytest.raises(CallAbandoned):
        backend.api.get("dispositions", {"skip": "0", "top": "10"})


def test_an_answer_past_the_size_limit_is_not_read(start_sim, backend_for, monkeypatch) -> None:
    sim = start_sim(Behaviour())
    backend = backend_for(sim, max_attempts=1)
    backend.check()
    monkeypatch.setattr(http, "MAX_ANSWER_BYTES", 64)
    with pytest.raises(TerminalApiError, match="answer larger than"):
        backend.api.get("dispositions", {"skip": "0", "top": "100"})

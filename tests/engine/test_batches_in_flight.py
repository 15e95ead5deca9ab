"""A campaign's archiving ends only once every batch it sent is settled, whichever of
them raised first: a batch still in flight when the campaign ends would be recorded
after the campaign's (and the run's) end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

from archiver.engine import campaign as campaign_mod
from archiver.engine.campaign import CampaignJob


class Boom(Exception):
    pass


def job_with(http: ThreadPoolExecutor, send: Any) -> CampaignJob:
    """A CampaignJob with only what archive_all reads: a policy's batch size and window,
    the run's executor and flags, and a ``_send`` of the test's."""
    job = CampaignJob.__new__(CampaignJob)
    policy = SimpleNamespace(
        batch=SimpleNamespace(max_items=2, force_cold_storage=False, delete_active=True),
        connection=SimpleNamespace(max_in_flight=8),
    )
    job.ctx = SimpleNamespace(  # type: ignore[assignment]
        policy=policy, http=http, cancelled=threading.Event(), halted=None,
        crash_point=lambda name: None,
    )
    job.cid, job.run_id, job.flagged, job.holds = "c1", "r1", True, None
    job.store = None  # type: ignore[assignment]
    job.backend = SimpleNamespace(whole_contacts=lambda cid: False)
    job._stop = None
    job._send = send  # type: ignore[method-assign]
    return job


def test_the_first_error_waits_for_the_batches_still_in_flight(monkeypatch):
    def two_batches(*args: Any, **kwargs: Any) -> Iterator[tuple[str, list[str]]]:
        yield "b1", ["a1", "a2"]
        yield "b2", ["a3", "a4"]

    monkeypatch.setattr(campaign_mod, "next_batches", two_batches)
    release = threading.Event()
    failed = threading.Event()
    recorded: list[str] = []

    def send(batch: str, items: list[str]) -> None:
        if batch == "b1":
            failed.set()
            raise Boom("b1 could not be recorded")
        release.wait(30)
        recorded.append(batch)

    outcome: list[BaseException] = []
    with ThreadPoolExecutor(4) as http:
        job = job_with(http, send)

        def archive() -> None:
            try:
                job.archive_all()
            except BaseException as err:  # kept for the test to read
                outcome.append(err)

        runner = threading.Thread(target=archive)
        runner.start()
        try:
            assert failed.wait(30)
            # b1 has raised; b2 is still being archived: the campaign must not end yet.
            runner.join(0.5)
            assert runner.is_alive(), "archive_all returned while a batch was still in flight"
            assert recorded == []
        finally:
            release.set()
        runner.join(30)
    assert not runner.is_alive()
    assert recorded == ["b2"]
    assert len(outcome) == 1 and isinstance(outcome[0], Boom)


def test_a_batch_sent_after_the_failing_one_is_recorded_before_the_error_goes_on(monkeypatch):
    def three_batches(*args: Any, **kwargs: Any) -> Iterator[tuple[str, list[str]]]:
        yield "b1", ["a1"]
        yield "b2", ["a2"]
        yield "b3", ["a3"]

    monkeypatch.setattr(campaign_mod, "next_batches", three_batches)
    recorded: list[str] = []
    lock = threading.Lock()

    def send(batch: str, items: list[str]) -> None:
        if batch == "b2":
            raise Boom(batch)
        if batch == "b3":
            time.sleep(0.5)  # still in flight when b2's error is seen
        with lock:
            recorded.append(batch)

    with ThreadPoolExecutor(4) as http:
        with pytest.raises(Boom) as raised:
            job_with(http, send).archive_all()
        # Read before the executor's exit waits for its threads.
        with lock:
            seen = sorted(recorded)
    # The first error in sending order is the one raised, once every batch is settled.
    assert str(raised.value) == "b2"
    assert seen == ["b1", "b3"]

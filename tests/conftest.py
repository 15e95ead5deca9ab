"""Shared fixtures: a simulator on a loopback port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from archiver.simulator import Faults, SimConfig, Simulator
from tests.support import CLIENT_ID, CLIENT_SECRET, WEBHOOK_SECRET


@pytest.fixture
def start_sim() -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def start(faults: Faults | None = None, **config: Any) -> Simulator:
        config.setdefault("client_id", CLIENT_ID)
        config.setdefault("client_secret", CLIENT_SECRET)
        config.setdefault("webhook_secret", WEBHOOK_SECRET)
        sim = Simulator(SimConfig(**config), faults or Faults())
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()

"""Fixtures for the simulator tests: a running simulator and a logged-in client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from archiver.simulator import Simulator

from ._api import SMALL, Api


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(SMALL) as running:
        yield running


@pytest.fixture
def api(sim: Simulator) -> Api:
    client = Api(sim)
    client.login()
    return client

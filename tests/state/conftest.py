"""The state store's tests run against both of its databases: a state folder (SQLite)
and a PostgreSQL database of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from archiver.state.location import PostgresUrl, StateLocation
from archiver.state.store import Store

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> StateLocation:
    """Where a store lives: a state folder, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "state"
    return PostgresUrl(request.getfixturevalue("postgres_url"))


@pytest.fixture
def open_store(location: StateLocation) -> Iterator[Callable[[], Store]]:
    """Opens stores at ``location`` (another session each: as another run would), closes
    them at the end."""
    opened: list[Store] = []

    def make() -> Store:
        store = Store(location)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    return open_store()

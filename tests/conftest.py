"""Shared fixtures: a simulator on a loopback port, a read-only mount, a PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from archiver.simulator import Faults, SimConfig, Simulator
from tests.support import CLIENT_ID, CLIENT_SECRET, WEBHOOK_SECRET

# The files that take longest, longest first: with the suite spread over workers a file
# at a time (.ci/run: pytest-xdist --dist loadfile), starting them first keeps one of
# them from being the last thing running while the other workers sit idle.
SLOW_FILES_FIRST = (
    "tests/plugins/test_example_plugin.py",  # a fresh virtualenv, pip-installed
    "tests/e2e/test_crash_recovery.py",
    "tests/e2e/test_pg_crash_recovery.py",
    "tests/e2e/test_cxone_retire.py",
    "tests/e2e/test_cxone_export_kills.py",
    "tests/contract/test_cleanroom_server.py",
    "tests/deploy/test_deploy_files.py",  # pre-commit installs the hooks' environment
    "tests/governance/test_evidence.py",
    "tests/e2e/test_storage_faults.py",
    "tests/benchmarks/test_throughput.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: n for n, path in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


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


@pytest.fixture
def read_only_view(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(a folder, a read-only bind mount of it); skipped where mounts are not allowed."""
    source, view = tmp_path / "source", tmp_path / "view"
    source.mkdir()
    view.mkdir()
    try:
        subprocess.run(["mount", "--bind", str(source), str(view)], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"cannot bind-mount here (needs root): {err}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True,
                       capture_output=True)
        yield source, view
    finally:
        subprocess.run(["umount", str(view)], check=False, capture_output=True)


# -- PostgreSQL ---------------------------------------------------------------------
# State stores in PostgreSQL are tested against a real server: the one
# ARCHIVER_TEST_POSTGRES_URL names (a superuser's URL: tests create databases), else a
# throwaway server started once per session (tests/pgserver.py). Without server binaries
# those tests are skipped, unless ARCHIVER_TEST_POSTGRES=require (as .ci/run sets it).


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    from tests import pgserver

    given = os.environ.get("ARCHIVER_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    bin_dir = pgserver.find_bin_dir()
    if bin_dir is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) not found"
        if os.environ.get("ARCHIVER_TEST_POSTGRES") == "require":
            pytest.fail(message + " and ARCHIVER_TEST_POSTGRES=require")
        pytest.skip(message + "; set ARCHIVER_TEST_POSTGRES_URL or install postgresql")
    server = pgserver.PostgresServer(bin_dir)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """The URL of a fresh, empty database of its own for one test (advisory locks are
    per database, so no test sees another's)."""
    import psycopg

    from tests import pgserver

    name = f"archiver_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield pgserver.database_url(postgres_admin_url, name)
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

"""What only a shared store has: runs on many machines at once, each a session of its own.

Each ``Store`` here is its own PostgreSQL session, as each run (each process, on any
machine) is: locks one holds, another cannot take; they die with the session.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from archiver.errors import EXIT_CONFIG, EXIT_STORAGE, ConfigError, StateError, StorageError
from archiver.state.location import PostgresUrl
from archiver.state.locks import SessionLocks, lock_key
from archiver.state.schema import MIGRATIONS
from archiver.state.store import Store
from archiver.target import Target

TARGET = Target("campaign-archive", "embedded")


def eventually(check: Callable[[], bool], seconds: float = 30) -> None:
    """The server ends a closed session's backend a moment after the client goes."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "never came true"
        time.sleep(0.02)


@pytest.fixture
def url(postgres_url: str) -> PostgresUrl:
    return PostgresUrl(postgres_url)


@pytest.fixture
def stores(url):
    opened: list[Store] = []

    def make() -> Store:
        opened.append(Store(url))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


def test_a_campaign_is_held_by_one_run_at_a_time_and_freed_when_it_ends(stores):
    a, b = stores(), stores()
    a.runs.start("run-a", "p", "h", TARGET)
    b.runs.start("run-b", "p", "h", TARGET)
    assert a.try_lock_campaign("c1")
    assert a.try_lock_campaign("c1"), "taken again by the run holding it"
    assert not b.try_lock_campaign("c1")
    assert b.campaign_holder("c1").startswith("held by archiver run run-a (pid ")
    assert b.try_lock_campaign("c2"), "other campaigns go on in parallel"
    a.unlock_campaign("c1")
    assert not b.try_lock_campaign("c1"), "still held once: taken twice, released once"
    a.unlock_campaign("c1")
    assert b.campaign_holder("c1") is None, "let go: no one to name"
    assert b.try_lock_campaign("c1")
    b.close()  # a run that ends (or dies) frees what it held
    eventually(lambda: a.try_lock_campaign("c1") and a.try_lock_campaign("c2"))


def test_the_same_campaign_of_another_target_is_another_lock(url, postgres_admin_url):
    a, b = Store(url), Store(url)
    try:
        a.runs.start("run-a", "p", "h", TARGET)
        b._conn.target = Target("campaign-archive", "api.example.com").to_json()
        assert a.try_lock_campaign("c1") and b.try_lock_campaign("c1")
    finally:
        a.close()
        b.close()


def test_a_killed_run_frees_its_campaigns_at_once(url):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from archiver.state.store import Store\n"
         "from archiver.state.location import PostgresUrl\n"
         "from archiver.target import Target\n"
         "s = Store(PostgresUrl(sys.argv[1]))\n"
         "s.runs.start('run-k', 'p', 'h', Target('campaign-archive', 'embedded'))\n"
         "assert s.try_lock_campaign('c1')\n"
         "print('held', flush=True)\n"
         "time.sleep(300)\n",
         url.dsn],
        stdout=subprocess.PIPE, text=True,
    )
    store = Store(url)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        store.runs.start("run-b", "p", "h", TARGET)
        assert not store.try_lock_campaign("c1")
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        eventually(lambda: store.try_lock_campaign("c1"))
    finally:
        holder.kill()
        store.close()


def test_a_live_run_elsewhere_is_not_marked_interrupted_a_dead_one_is(stores):
    a = stores()
    a.runs.start("run-a", "p", "h", TARGET)
    b = stores()
    b.runs.start("run-b", "p", "h", TARGET)
    status = {r["id"]: r["status"] for r in b.runs.recent()}
    assert status == {"run-a": "running", "run-b": "running"}
    a.close()  # run-a dies without finishing
    eventually(lambda: b._conn.locks.is_free(lock_key("run", "run-a")))
    c = stores()
    c.runs.start("run-c", "p", "h", TARGET)
    status = {r["id"]: r["status"] for r in c.runs.recent()}
    assert status == {"run-a": "interrupted", "run-b": "running", "run-c": "running"}


def test_pauses_are_restored_only_by_a_run_that_can_hold_their_campaign(stores):
    a, b = stores(), stores()
    a.runs.start("run-a", "p", "h", TARGET)
    assert a.try_lock_campaign("c1")
    a.campaigns.record_pause("c1", "run-a", "ACTIVE")  # run-a is archiving c1, paused
    b.campaigns.record_pause("c2", "run-dead", "ACTIVE")  # left by a run that died
    b.runs.start("run-b", "p", "h", TARGET)
    assert b.campaigns.pauses() == [("c2", "ACTIVE")], "c1 is run-a's to resume"
    assert not a.try_lock_campaign("c2"), "run-b holds c2 while it restores it"
    a.close()
    eventually(lambda: sorted(b.campaigns.pauses()) == [("c1", "ACTIVE"), ("c2", "ACTIVE")])


def test_dialing_to_resume_is_left_to_the_live_run_that_paused_it(stores):
    a, b = stores(), stores()
    a.runs.start("run-a", "p", "h", TARGET)
    assert a.try_lock_campaign("c1")
    a.campaigns.record_dialing("c1", "run-a", {"skills": [7]})
    b.campaigns.record_dialing("c2", "run-dead", {"status": "ACTIVE"})
    b.runs.start("run-b", "p", "h", TARGET)
    assert b.campaigns.paused_dialing() == [("c2", {"status": "ACTIVE"})]
    a.close()
    eventually(lambda: b.campaigns.paused_dialing() == [
        ("c1", {"skills": [7]}), ("c2", {"status": "ACTIVE"})])


def test_undelivered_events_of_a_live_runs_sinks_are_not_orphans(stores):
    a, b = stores(), stores()
    a.own_sinks(["audit_log:/host-a/audit.jsonl", "webhook:https://dw"])
    b.own_sinks(["webhook:https://dw"])
    a.events.enqueue([("e1", "audit_log:/host-a/audit.jsonl", "run_started", "{}"),
                      ("e1", "webhook:https://dw", "run_started", "{}")])
    # run-b's policy has no sink for host a's audit log: while run-a lives, run-a delivers it.
    assert b.events.undelivered_by_sink() == {}
    a.close()
    eventually(lambda: b.events.undelivered_by_sink() == {
        "audit_log:/host-a/audit.jsonl": 1, "webhook:https://dw": 1})


def test_one_run_at_a_time_delivers_a_sink(stores):
    a, b = stores(), stores()
    with a.delivering("webhook:https://dw") as mine:
        assert mine
        started = time.monotonic()
        with b.delivering("webhook:https://dw", wait=False) as theirs:
            assert not theirs
        assert time.monotonic() - started < 5
        with b.delivering("audit_log:/x", wait=False) as other:
            assert other, "another sink is delivered side by side"
    with b.delivering("webhook:https://dw", wait=False) as theirs:
        assert theirs


def test_a_delivery_waits_for_the_run_delivering_the_same_sink(stores, monkeypatch):
    a, b = stores(), stores()
    got: list[bool] = []
    refused = threading.Event()  # b has found the sink taken (a holds it: a's tries succeed)
    try_lock = SessionLocks.try_lock

    def trying(self: SessionLocks, key: int, **kw: bool) -> bool:
        taken = try_lock(self, key, **kw)
        if not taken:
            refused.set()
        return taken

    monkeypatch.setattr(SessionLocks, "try_lock", trying)
    with a.delivering("webhook:https://dw"):
        waiter = threading.Thread(target=lambda: got.append(
            b.delivering("webhook:https://dw").__enter__()))
        waiter.start()
        assert refused.wait(30), "b never tried the sink a delivers"
    waiter.join(timeout=30)
    assert got == [True], "b waited for a and then delivered"


def test_runs_opening_a_new_store_at_once_migrate_it_once(url):
    errors: list[BaseException] = []
    opened: list[Store] = []

    def open_one() -> None:
        try:
            opened.append(Store(url))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert errors == []
        assert {s.schema_version for s in opened} == {len(MIGRATIONS)}
        assert opened[0].query("SELECT count(*) FROM schema_version") == [(1,)]
    finally:
        for s in opened:
            s.close()


def test_text_with_a_nul_character_is_kept_with_a_replacement(stores):
    store = stores()
    store.runs.start("r1", "p", "h")
    store.campaigns.set_status("r1", "c1", "failed", "the server said \x00 here")
    assert store.campaigns.status("r1", "c1") == ("failed", "the server said \ufffd here")


def test_an_existing_store_is_required_where_one_is_read(url):
    with pytest.raises(StateError, match="no state store in postgresql://postgres@"):
        Store.open_existing(url)
    Store(url).close()
    Store.open_existing(url).close()


def test_a_refused_password_is_a_config_error_that_never_shows_it(postgres_url):
    wrong = postgres_url.replace("postgresql://postgres:", "postgresql://postgres:Wr0ngPa55word", 1)
    with pytest.raises(ConfigError) as caught:
        Store(PostgresUrl(wrong))
    assert caught.value.exit_code == EXIT_CONFIG
    assert "password authentication failed" in str(caught.value)
    assert "Wr0ngPa55word" not in str(caught.value)
    password = postgres_url.split(":")[2].split("@")[0]
    assert password not in str(caught.value)


def test_a_server_that_cannot_be_reached_is_a_storage_error():
    with pytest.raises(StorageError) as caught:
        Store(PostgresUrl("postgresql://archiver:s3cretpassw0rd@127.0.0.1:9/archiver"))
    assert caught.value.exit_code == EXIT_STORAGE
    message = str(caught.value)
    assert message.startswith("the state store postgresql://archiver@127.0.0.1:9/archiver: ")
    assert "s3cretpassw0rd" not in message and "\n" not in message


def test_a_lost_connection_stops_the_run_at_its_next_statement(url, postgres_admin_url):
    store = Store(url)
    try:
        store.runs.start("r1", "p", "h")
        pid = store.query("SELECT pg_backend_pid()")[0][0]
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StorageError, match="check that the server is up"):
            store.campaigns.set_status("r1", "c1", "listing")
    finally:
        store.close()


@pytest.fixture
def reader(postgres_url: str) -> Iterator[tuple[str, PostgresUrl]]:
    """A role that may only read the test's database (an auditor's), and its URL."""
    role, password = f"reader_{uuid.uuid4().hex[:10]}", "reader-pw-" + uuid.uuid4().hex[:8]
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        db.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    parts = urlsplit(postgres_url)
    yield role, PostgresUrl(urlunsplit(
        parts._replace(netloc=f"{role}:{password}@{parts.hostname}:{parts.port}")))
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(f"DROP OWNED BY {role}")
        db.execute(f"DROP ROLE {role}")


def test_a_role_that_may_only_read_reads_the_store_where_commands_only_read(
    url, reader, postgres_url
):
    role, reader_url = reader
    store = Store(url)
    try:
        store.runs.start("r1", "p", "h", TARGET)
        store.runs.finish("r1", "completed", 0, {"run_id": "r1"})
    finally:
        store.close()
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    # `runs`, `audit verify --state` and `evidence` open it so: nothing to create or
    # migrate, so nothing a reader may not do.
    read = Store.open_existing(reader_url, read_only=True)
    try:
        assert [r["id"] for r in read.runs.recent()] == ["r1"]
    finally:
        read.close()
    # A store of an older version is not upgraded by a command that only reads.
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("UPDATE schema_version SET version = version - 1")
    with pytest.raises(StateError, match="a run of this archiver upgrades it"):
        Store.open_existing(url, read_only=True)
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT version FROM schema_version").fetchone() == (len(MIGRATIONS) - 1,)


def test_a_run_is_told_when_it_no_longer_holds_its_campaign(url, postgres_admin_url):
    store = Store(url)
    try:
        store.runs.start("r1", "p", "h", TARGET)
        with pytest.raises(StorageError, match="no longer holds campaign c1"):
            store.check_held("c1")  # never taken
        assert store.try_lock_campaign("c1")
        store.check_held("c1")
        store.check_session()
        pid = store.query("SELECT pg_backend_pid()")[0][0]
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StorageError, match="check that the server is up"):
            store.check_held("c1")  # its session, and with it the lock, is gone
        with pytest.raises(StorageError, match="check that the server is up"):
            store.check_session()
    finally:
        store.close()


def test_a_run_that_starts_while_a_sink_is_dropped_waits_then_is_never_dropped_under(stores):
    # `runs outbox --drop` checked for a live run, then dropped: a run starting in
    # between had the events it then recorded given up. The drop now holds the sink
    # against runs while it gives them up; a run starting meanwhile waits for it.
    sink = "webhook:https://dw"
    dropper, run = stores(), stores()
    owned = threading.Event()
    with dropper.dropping(sink) as user:
        assert user is None
        waiter = threading.Thread(target=lambda: (run.own_sinks([sink]), owned.set()))
        waiter.start()
        assert not owned.wait(1.0), "the run took the sink while it was being dropped"
    waiter.join(timeout=30)
    assert owned.is_set(), "the run went on once the drop was done"
    with dropper.dropping(sink) as user:
        assert user is not None, "a live run's sink is not dropped"
    run.close()
    eventually(lambda: _drops_alone(dropper, sink))


def _drops_alone(store: Store, sink: str) -> bool:
    with store.dropping(sink) as user:
        return user is None

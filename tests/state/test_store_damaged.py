"""A state folder that is not as archiver left it: rows it did not write so (the file
damaged, a row edited by hand), another program holding the file. Every reader refuses in
one line naming the store, what is wrong and what to do, before a run does any work."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver.cli import cli
from archiver.engine.context import as_record
from archiver.engine.runner import run_policy
from archiver.errors import EXIT_LOCKED, StateError, StateLockedError, StorageError
from archiver.policy import load_policy
from archiver.state import sqlite as sqlite_backend
from archiver.state.attempts import PendingItem
from archiver.state.store import DB_NAME, Store
from tests.engine.fakes import RecordingBackend
from tests.state.test_store_backends import TARGET, batch_of, decision
from tests.support import policy_dict, write_policy


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    store = Store(tmp_path / "state")
    try:
        store.runs.start("r1", "p", "h", TARGET)
        store.runs.finish("r1", "completed", 0, {"totals": {}},
                          [("archiver_runs", {"status": "completed"}, 1)])
    finally:
        store.close()
    return tmp_path / "state"


@pytest.fixture
def store(folder: Path) -> Iterator[Store]:
    opened = Store(folder)
    yield opened
    opened.close()


def edit(folder: Path, sql: str, *args: object) -> None:
    db = sqlite3.connect(folder / "state.db")
    with db:
        db.execute(sql, args)
    db.close()


DAMAGED_TOTALS = [
    "not json", "[1]", '{"p": 3}', '{"p": {"archiver_runs": []}}',
    '{"p": {"archiver_runs": {"{\\"status\\": \\"completed\\"}": "one"}}}',
    '{"p": {"archiver_runs": {"status=completed": 1}}}',
]


@pytest.mark.parametrize("value", DAMAGED_TOTALS)
def test_damaged_running_totals_refuse_a_run_at_its_start_and_say_how_to_count_again(
    folder, value
):
    edit(folder, "UPDATE store_meta SET value = ? WHERE key = 'totals'", value)
    store = Store(folder)
    try:
        with pytest.raises(StateError) as caught:
            store.runs.start("r2", "p", "h", TARGET)
        message = str(caught.value)
        assert message.startswith(
            f"the state store {folder} is damaged: the running totals (store_meta 'totals') are"
        )
        assert "DELETE FROM store_meta WHERE key = 'totals'" in message
        assert "\n" not in message
        # Nothing of the refused run was recorded.
        assert [r for (r,) in store.query("SELECT id FROM runs")] == ["r1"]
        for read in (lambda: store.runs.totals("p"),
                     lambda: store.runs.add_to_totals("p", [("x", {}, 1)])):
            with pytest.raises(StateError, match="is damaged: the running totals"):
                read()
    finally:
        store.close()


def test_totals_read_and_grow_as_before(store):
    store.runs.add_to_totals("p", [("archiver_runs", {"status": "completed"}, 2)])
    assert store.runs.totals("p") == [("archiver_runs", {"status": "completed"}, 3.0)]


@pytest.mark.parametrize("dialing", ["garbage", "[]", '"ACTIVE"'])
def test_a_pause_whose_dialing_is_not_an_object_is_named_with_its_campaign(store, folder, dialing):
    store.campaigns.record_dialing("c-7", "r1", {"status": "ACTIVE"})
    edit(folder, "UPDATE pauses SET dialing = ?", dialing)
    with pytest.raises(StateError) as caught:
        store.campaigns.paused_dialing()
    assert str(caught.value) == (
        f"the state store {folder} is damaged: what campaign c-7 was dialing when a run paused"
        " it (pauses.dialing) is not a JSON object; restore it from a backup or resume the"
        " campaign by hand and delete its row from pauses"
    )


@pytest.mark.parametrize("stored", [b"c-7", None])
def test_a_pause_whose_campaign_is_not_text_is_named_before_it_is_resumed(store, folder, stored):
    store.campaigns.record_dialing("c-7", "r1", {"status": "ACTIVE"})
    # A TEXT primary key takes NULL in SQLite.
    edit(folder, "UPDATE pauses SET campaign_id = ?", stored)
    for read in (store.campaigns.paused_dialing, store.campaigns.pauses):
        with pytest.raises(StateError) as caught:
            read()
        assert str(caught.value) == (
            f"the state store {folder} is damaged: a campaign a run paused has "
            f"pauses.campaign_id {stored!r}, not text; restore it from a backup or resume the "
            "campaign by hand and delete its row from pauses"
        )


def test_a_store_another_process_holds_in_a_write_transaction_is_exit_75_naming_it(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(sqlite_backend, "BUSY_TIMEOUT_SECONDS", 0.05)
    Store(tmp_path).close()
    holder = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    store = Store(tmp_path)
    try:
        with pytest.raises(StateLockedError) as caught:
            store.runs.start("r1", "p", "h")
        assert caught.value.exit_code == EXIT_LOCKED
        assert str(caught.value).startswith(
            f"another process holds the state store {tmp_path / DB_NAME} in a write "
            "transaction (database is locked, after waiting 0.05 s); close what has it open"
        )
        holder.execute("ROLLBACK")
        store.runs.start("r1", "p", "h")
    finally:
        store.close()
        holder.close()


@pytest.mark.parametrize("args", [("runs",), ("runs", "show", "r1")])
def test_a_value_that_is_not_utf8_is_named_by_its_column_not_quoted(folder, args):
    # A damaged byte in a row: SQLite hands back the text, Python cannot decode it.
    edit(folder, "UPDATE runs SET report = CAST(? AS TEXT)", b'{"totals": {}, "x": "\xff"}')
    result = CliRunner().invoke(cli, [*args, "--state", str(folder)], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.output == (
        f"archiver: error: the state store {folder / DB_NAME} is unusable: a value in its column"
        " 'report' is not UTF-8 text; restore it from a backup or move it aside\n"
    )


@pytest.mark.parametrize("value", ["garbage", "[]", '{"backend": "campaign-archive", "host": 7}'])
def test_a_target_record_that_is_not_a_target_is_damage_not_another_target(folder, value):
    edit(folder, "UPDATE store_meta SET value = ? WHERE key = 'target'", value)
    store = Store(folder)
    try:
        for check in (lambda: store.runs.check_target(TARGET),
                      lambda: store.runs.start("r2", "p", "h", TARGET)):
            with pytest.raises(StateError) as caught:
                check()
            assert type(caught.value) is StateError  # exit 1, not 78 (another target)
            assert str(caught.value) == (
                f"the state store {folder} is damaged: the target it belongs to (store_meta "
                f"'target') is not a target ({value!r}); restore it from a backup or move it aside"
            )
        assert [r for (r,) in store.query("SELECT id FROM runs")] == ["r1"]
    finally:
        store.close()


def open_batch_damaged(store, folder, column, value) -> pytest.ExceptionInfo[StateError]:
    """An open batch of two attempts whose batches.COLUMN is then overwritten with VALUE,
    and the StateError reading the campaign's open batches raises."""
    store.runs.start("r2", "p", "h", TARGET)
    store.attempts.record_listed("r2", "c1", [decision(1), decision(2)])
    batch_of(store, "r2", "c1", ["a-0001", "a-0002"])
    edit(folder, f"UPDATE batches SET {column} = ?", value)
    with pytest.raises(StateError) as caught:
        store.batches.open("c1")
    return caught


@pytest.mark.parametrize(("column", "value"), [("size", "abc"), ("seq", "1.5x"), ("size", "")])
def test_an_open_batch_whose_counts_are_not_numbers_is_named(store, folder, column, value):
    caught = open_batch_damaged(store, folder, column, value)
    assert str(caught.value).startswith(
        f"the state store {folder} is damaged: batch c1-1-r2 of campaign c1 has {column} "
    )
    assert str(caught.value).endswith("not a number; restore it from a backup or move it aside")


@pytest.mark.parametrize(("column", "value"), [
    ("id", b"c1-1-r2"), ("id", None), ("idempotency_key", b"arc-c1-1-r2"), ("run_id", b"\xff"),
])
def test_an_open_batch_whose_ids_are_not_text_is_named(store, folder, column, value):
    caught = open_batch_damaged(store, folder, column, value)
    shown = value if column == "id" else "c1-1-r2"
    assert str(caught.value) == (
        f"the state store {folder} is damaged: batch {shown} of campaign c1 has {column} "
        f"{value!r}, not text; restore it from a backup or move it aside"
    )


@pytest.mark.parametrize("value", [b"\x00", "x"])
def test_a_batch_formed_again_whose_earlier_count_is_not_a_number_is_named(store, folder, value):
    store.runs.start("r2", "p", "h", TARGET)
    store.attempts.record_listed("r2", "c1", [decision(1), decision(2)])
    refused = batch_of(store, "r2", "c1", ["a-0001", "a-0002"])
    store.batches.failed(refused, run_id="r2", error="400 refused", sent=False)
    edit(folder, "UPDATE batches SET archived_count = ?", value)
    with pytest.raises(StateError) as caught:
        batch_of(store, "r2", "c1", ["a-0001", "a-0002"])  # its attempts batched again
    assert str(caught.value) == (
        f"the state store {folder} is damaged: batch c1-1-r2 of campaign c1 has archived_count "
        f"{value!r}, not a number; restore it from a backup or move it aside"
    )
    assert store.query("SELECT status FROM batches") == [("failed",)]
    assert store.query("SELECT count(*) FROM attempts WHERE batch_id IS NOT NULL") == [(0,)]


@pytest.mark.parametrize("handle", ["garbage", "[1]", '"x"'])
def test_an_attempt_whose_handle_is_not_an_object_is_named_before_its_batch_is_sent(handle):
    item = PendingItem("a-1", "c-1", "NO_ANSWER", "x", 3, 30, "r1", True, handle)
    with pytest.raises(StateError) as caught:
        as_record(item, "/srv/state")
    assert str(caught.value) == (
        "the state store /srv/state is damaged: what attempt a-1 keeps for its backend "
        "(attempts.handle) is not a JSON object; restore it from a backup or move it aside"
    )
    assert as_record(item._replace(handle='{"list": "7"}'), "/srv/state").handle == {"list": "7"}
    assert as_record(item._replace(handle=None), "/srv/state").handle == {}


def test_a_journal_left_by_another_writer_is_named_with_how_to_roll_it_back(folder):
    """A reader cannot roll back a hot journal; a writer does, and the store reads again."""
    journal = folder / f"{DB_NAME}-journal"
    journal.write_bytes(b"\x07" * 4096)
    journal.chmod(0o600)
    with pytest.raises(StorageError) as caught:
        Store.open_existing(folder, read_only=True)
    assert str(caught.value).startswith(
        f"cannot read the state store {folder / DB_NAME}: {folder / DB_NAME}-journal holds a "
        "transaction a writer did not finish, which a command that only reads cannot roll back;"
    )
    with sqlite3.connect(folder / DB_NAME) as db:  # what the message says to do
        db.execute("PRAGMA user_version").fetchone()
    store = Store.open_existing(folder, read_only=True)
    try:
        assert [r["id"] for r in store.runs.recent()] == ["r1"]
    finally:
        store.close()


def test_an_outbox_event_whose_sink_or_time_is_not_text_is_named(store, folder):
    store.events.enqueue([("evt-1", "webhook:x", "batch_archived", "{}"),
                          ("evt-2", "webhook:y", "batch_archived", "{}")])
    edit(folder, "UPDATE outbox SET created_at = ? WHERE event_id = 'evt-2'", b"\x00")
    with pytest.raises(StateError, match=(
        r"is damaged: an outbox event of sink webhook:y has created_at b'\\x00', not text;"
    )):
        store.events.by_sink()
    edit(folder, "UPDATE outbox SET created_at = 'x'")
    edit(folder, "UPDATE outbox SET sink = ? WHERE event_id = 'evt-1'", b"\xff")
    for read in (store.events.by_sink, store.events.sinks, store.events.undelivered_by_sink):
        with pytest.raises(StateError) as caught:
            read()
        assert str(caught.value) == (
            f"the state store {folder} is damaged: an outbox event has sink b'\\xff', not text;"
            " restore it from a backup or move it aside"
        )


@pytest.mark.parametrize(("column", "value", "kind"), [
    ("attempt_id", b"a-1", "text"), ("contact_id", b"\xff", "text"), ("outcome", 7, "text"),
    ("duration", b"3", "a number"), ("retention_days", "30 days", "a number"),
    ("retention_days", None, "a number"), ("updated_at", b"", "text"),
])
def test_an_attempt_value_of_another_type_is_named_before_its_batch_is_sent(column, value, kind):
    item = PendingItem("a-1", "c-1", "NO_ANSWER", "x", 3, 30, "r1", True, None)._replace(
        **{column: value}
    )
    shown = "b'a-1'" if column == "attempt_id" else "a-1"
    with pytest.raises(StateError) as caught:
        as_record(item, "/srv/state")
    assert str(caught.value) == (
        f"the state store /srv/state is damaged: attempt {shown} has attempts.{column} "
        f"{value!r}, not {kind}; restore it from a backup or move it aside"
    )


@pytest.mark.parametrize("stored", [b"\xff\x00", b"a-0001"])
def test_an_open_batch_whose_member_id_is_not_text_is_named_before_it_is_reconciled(
    tmp_path, folder, stored
):
    # A run killed once it had prepared its batch; then a member's id is overwritten.
    store = Store(folder)
    try:
        store.runs.start("r2", "p", "h", TARGET)
        store.attempts.record_listed("r2", "c1", [decision(1), decision(2)])
        batch_of(store, "r2", "c1", ["a-0001", "a-0002"])
    finally:
        store.close()
    edit(folder, "UPDATE attempts SET attempt_id = ? WHERE attempt_id = 'a-0001'", stored)
    policy = load_policy(write_policy(tmp_path / "policy.yaml", policy_dict(["c1"])))
    backend = RecordingBackend({"c1": [decision(1).attempt, decision(2).attempt]}, page_size=10)
    with pytest.raises(StateError) as caught:
        run_policy(policy, backend=backend, sinks=[], state_dir=folder, target=TARGET)
    assert str(caught.value) == (
        f"the state store {folder} is damaged: attempt {stored!r} of batch c1-1-r2 has "
        f"attempts.attempt_id {stored!r}, not text; restore it from a backup or move it aside"
    )
    assert backend.acted == [], "nothing sent"
    with sqlite3.connect(folder / DB_NAME) as db:
        assert db.execute("SELECT status FROM batches").fetchall() == [("prepared",)]
        archived = db.execute("SELECT count(*) FROM attempts WHERE state = 'archived'")
        assert archived.fetchone() == (0,)


@pytest.mark.parametrize("stored", [b"\xff\x00", None])
def test_a_run_still_marked_running_without_an_id_refuses_the_next_run_at_its_start(
    folder, stored
):
    store = Store(folder)
    try:
        store.runs.start("r2", "p", "h", TARGET)  # killed: it stays marked running
        [(started,)] = store.query("SELECT started_at FROM runs WHERE id = 'r2'")
    finally:
        store.close()
    edit(folder, "UPDATE runs SET id = ? WHERE id = 'r2'", stored)
    store = Store(folder)
    try:
        with pytest.raises(StateError) as caught:
            store.runs.start("r3", "p", "h", TARGET)
        assert str(caught.value) == (
            f"the state store {folder} is damaged: a run started at {started} has no id "
            f"(runs.id {stored!r}); restore it from a backup or move it aside"
        )
        # Nothing of the refused run was recorded, nor the damaged one marked.
        assert sorted(store.query("SELECT status FROM runs")) == [("completed",), ("running",)]
    finally:
        store.close()


def test_a_run_still_marked_running_whose_start_is_not_text_is_named_before_a_prune(folder):
    store = Store(folder)
    try:
        store.runs.start("r2", "p", "h", TARGET)  # killed: it stays marked running
    finally:
        store.close()
    edit(folder, "UPDATE runs SET started_at = ? WHERE id = 'r2'", b"\xff\x00")
    for dry_run in (["--dry-run"], []):
        result = CliRunner().invoke(
            cli, ["runs", "prune", "--older-than", "0s", *dry_run, "--state", str(folder)],
            catch_exceptions=False,
        )
        assert result.exit_code == 1, result.output
        assert result.output == (
            f"archiver: error: the state store {folder} is damaged: run r2 has runs.started_at"
            " b'\\xff\\x00', not text; restore it from a backup or move it aside\n"
        )
    # Nothing went: r1 finished before the cutoff, and stays with the refused prune.
    store = Store(folder)
    try:
        assert sorted(store.query("SELECT id FROM runs")) == [("r1",), ("r2",)]
    finally:
        store.close()


@pytest.mark.parametrize(("body", "problem"), [
    ("garbage", "not JSON (Expecting value: line 1 column 1 (char 0))"),
    ("[1]", "JSON list, not an object"), (b"{}", "not text"),
])
def test_an_event_kept_unrendered_whose_context_is_not_an_object_is_named(
    store, folder, body, problem
):
    store.events.enqueue([("evt-1", "webhook:https://h/x?a&b", "batch_archived", "{}",
                           "unrendered")])
    edit(folder, "UPDATE outbox SET body = ?", body)
    with pytest.raises(StateError) as caught:
        store.events.unrendered(["webhook:https://h/x?a&b"])
    assert str(caught.value) == (
        f"the state store {folder} is damaged: the batch_archived event evt-1 kept unrendered"
        f" for sink webhook:https://h/x?a&b has a context (outbox.body) that is {problem};"
        " restore it from a backup or give up the sink's undelivered events with"
        " `archiver runs outbox --drop 'webhook:https://h/x?a&b'`"
    )


@pytest.mark.parametrize(("column", "value", "problem"), [
    ("event_id", b"evt-1", "an outbox event of sink webhook:x has event_id b'evt-1', not text"),
    ("kind", b"\xff", "an outbox event of sink webhook:x has kind b'\\xff', not text"),
    ("body", b"{}", "the batch_archived event evt-1 for sink webhook:x has a body (outbox.body)"
                    " that is not text"),
])
def test_an_event_to_deliver_whose_values_are_not_text_is_named(
    store, folder, column, value, problem
):
    store.events.enqueue([("evt-1", "webhook:x", "batch_archived", "{}")])
    edit(folder, f"UPDATE outbox SET {column} = ?", value)
    with pytest.raises(StateError) as caught:
        store.events.pending("webhook:x")
    assert str(caught.value) == (
        f"the state store {folder} is damaged: {problem}; restore it from a backup or give up"
        " the sink's undelivered events with `archiver runs outbox --drop webhook:x`"
    )


def test_a_listing_watermark_that_is_not_text_is_named_not_passed_to_the_backend(store, folder):
    store.campaigns.set_watermark("c1", "completed_contacts", "2026-11-01T00:00:00Z")
    edit(folder, "UPDATE watermarks SET value = ?", b"\xff\x00")
    with pytest.raises(StateError) as caught:
        store.campaigns.watermark("c1", "completed_contacts")
    assert str(caught.value) == (
        f"the state store {folder} is damaged: where campaign c1's completed_contacts listing"
        " goes on from (watermarks.value) is b'\\xff\\x00', not text; restore it from a backup"
        " or delete its row from watermarks (the next run lists from source.since again)"
    )
    assert store.campaigns.watermark("c2", "completed_contacts") is None

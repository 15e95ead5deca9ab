"""The state store's schema is versioned; it migrates forward and refuses a newer one."""

from __future__ import annotations

import sqlite3

import pytest

from archiver.errors import StateError
from archiver.state.schema import MIGRATIONS
from archiver.state.store import DB_NAME, Store


def test_a_new_store_is_at_the_latest_version_in_wal_mode(tmp_path):
    store = Store(tmp_path)
    assert store.schema_version == len(MIGRATIONS)
    store.close()
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopening_keeps_the_data_and_does_not_migrate_again(tmp_path):
    store = Store(tmp_path)
    store.runs.start("r1", "p", "h")
    store.close()
    again = Store(tmp_path)
    assert again.schema_version == len(MIGRATIONS)
    assert [r["id"] for r in again.runs.recent()] == ["r1"]
    again.close()


def test_a_store_written_by_a_newer_archiver_is_refused(tmp_path):
    Store(tmp_path).close()
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StateError, match="newer than this archiver understands"):
        Store(tmp_path)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="is unusable"):
        Store(tmp_path)


def test_a_version_1_store_migrates_forward_keeping_its_data(tmp_path):
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        db.executescript(MIGRATIONS[0])
        db.execute("PRAGMA user_version = 1")
        db.execute(
            "INSERT INTO attempts (campaign_id, attempt_id, run_id, decision, state)"
            " VALUES ('c', 'a-1', 'r', 'archive', 'pending')"
        )
    store = Store(tmp_path)
    assert store.schema_version == len(MIGRATIONS) >= 2
    assert store.attempts.counts("r") == {"c": {"pending": 1}}
    # Listed before the store kept the anonymized flag: not batched until listed again.
    assert store.attempts.unbatched("r", "c", "", 10) == []
    store.close()
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT attempt_id FROM attempts WHERE campaign_id = 'c'"
            " AND state = 'pending' AND batch_id IS NULL AND attempt_id > '' AND run_id = 'r'"
            " ORDER BY attempt_id LIMIT 200"
        ).fetchall()
    assert "attempts_unbatched" not in indexes
    # Keyset paging over what is left to batch stays an index search, not a scan.
    assert any("attempts_run_state" in row[-1] for row in plan), plan


def test_runs_starting_with_reads_only_the_matching_runs(tmp_path):
    store = Store(tmp_path)
    for run_id in ("r1-aa", "r1-ab", "r2-aa", "x%_1"):
        store.runs.start(run_id, "p", "h")
    assert sorted(r["id"] for r in store.runs.starting_with("r1-a")) == ["r1-aa", "r1-ab"]
    assert [r["id"] for r in store.runs.starting_with("r2-aa")] == ["r2-aa"]
    # No LIKE wildcards: % and _ are matched as themselves.
    assert [r["id"] for r in store.runs.starting_with("x%_")] == ["x%_1"]
    assert store.runs.starting_with("r3") == []
    store.close()


def test_a_store_rebuilt_without_its_version_is_named_with_how_to_give_it_back(tmp_path):
    """sqlite3's .dump (and .recover) copy the tables but not PRAGMA user_version."""
    old, new = tmp_path / "old", tmp_path / "new"
    Store(old).close()
    new.mkdir(mode=0o700)
    with sqlite3.connect(old / DB_NAME) as source, sqlite3.connect(new / DB_NAME) as copy:
        copy.executescript("\n".join(source.iterdump()))
    for read_only in (False, True):
        with pytest.raises(StateError) as caught:
            Store(new, read_only=read_only)
        assert str(caught.value) == (
            f"the state store {new / DB_NAME} holds tables but no schema version (PRAGMA "
            "user_version 0: sqlite3's .dump and .recover leave it out); its tables are those "
            f"of version {len(MIGRATIONS)}: if it is complete, `sqlite3 {new / DB_NAME} "
            f"'PRAGMA user_version = {len(MIGRATIONS)}'` gives it back, or move it aside"
        )
    with sqlite3.connect(new / DB_NAME) as copy:
        copy.execute("DROP TABLE watermarks")
    with pytest.raises(StateError, match=r"no schema version .*; restore it from a backup"):
        Store(new)
    with sqlite3.connect(new / DB_NAME) as copy:
        copy.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
    store = Store(new)
    try:
        with pytest.raises(StateError, match=(
            f"^the state store {new / DB_NAME} lacks part of its schema "
            r"\(no such table: watermarks\); restore it from a backup or move it aside$"
        )):
            store.campaigns.watermark("c", "s")
    finally:
        store.close()


def test_a_store_whose_version_was_set_back_is_not_half_upgraded(tmp_path):
    Store(tmp_path).close()
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        db.execute("PRAGMA user_version = 2")
    with pytest.raises(StateError, match=(
        r"says schema version 2 but cannot be upgraded to 3 .*duplicate column name"
    )):
        Store(tmp_path)
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2

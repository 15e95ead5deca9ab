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
    store.start_run("r1", "p", "h")
    store.close()
    again = Store(tmp_path)
    assert again.schema_version == len(MIGRATIONS)
    assert [r["id"] for r in again.runs()] == ["r1"]
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

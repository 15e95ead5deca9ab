"""Schema 4: watermarks per campaign and listing, pauses that keep what was dialing, and
stores from before it, migrated."""

from __future__ import annotations

import sqlite3

from archiver.state.schema import MIGRATIONS
from archiver.state.store import DB_NAME, Store


def test_a_watermark_is_kept_per_campaign_and_listing_and_moves_on(tmp_path):
    store = Store(tmp_path)
    assert store.campaigns.watermark("c1", "completed_contacts") is None
    store.campaigns.set_watermark("c1", "completed_contacts", "2026-11-01T00:00:00.000Z")
    store.campaigns.set_watermark("c1", "completed_contacts", "2026-11-02T00:00:00.000Z")
    store.campaigns.set_watermark("c2", "completed_contacts", "2026-10-01T00:00:00.000Z")
    assert store.campaigns.watermark("c1", "completed_contacts") == "2026-11-02T00:00:00.000Z"
    assert store.campaigns.watermark("c1", "call_list_attempts") is None
    assert store.campaigns.watermark("c2", "completed_contacts") == "2026-10-01T00:00:00.000Z"
    store.close()


def test_a_pause_keeps_what_the_backend_paused(tmp_path):
    store = Store(tmp_path)
    store.campaigns.record_dialing("1834501", "r1", {"skills": [40001, 40002]})
    store.campaigns.record_dialing("1834501", "r2", {"skills": [40002]})  # recorded again: replaced
    assert store.campaigns.paused_dialing() == [("1834501", {"skills": [40002]})]
    store.campaigns.clear_pause("1834501")
    assert store.campaigns.paused_dialing() == []
    store.close()


def test_a_pause_left_by_a_store_before_schema_4_is_restored_as_it_was(tmp_path):
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        for number, script in enumerate(MIGRATIONS[:3], start=1):
            db.executescript(f"{script}\nPRAGMA user_version = {number};")
        db.execute("INSERT INTO pauses VALUES ('camp-1', 'r0', 'ACTIVE', '2026-01-01T00:00:00Z')")
    (tmp_path / DB_NAME).chmod(0o600)
    store = Store(tmp_path)
    assert store.schema_version == len(MIGRATIONS) == 4
    assert store.campaigns.paused_dialing() == [("camp-1", {"status": "ACTIVE"})]
    store.close()

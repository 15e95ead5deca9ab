"""The state store's schema, as forward migrations. Never edit a shipped step: add one."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: runs, attempts and their decisions, batches, outbox, campaign pauses.
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        policy_name TEXT NOT NULL,
        policy_sha256 TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,            -- running | completed | failed | interrupted
        exit_code INTEGER,
        report TEXT                      -- JSON run report, when finished
    );
    CREATE TABLE campaigns (
        run_id TEXT NOT NULL,
        campaign_id TEXT NOT NULL,
        status TEXT NOT NULL,            -- listing | listed | done | skipped | failed | aborted
        reason TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (run_id, campaign_id)
    );
    CREATE TABLE attempts (
        campaign_id TEXT NOT NULL,
        attempt_id TEXT NOT NULL,
        run_id TEXT NOT NULL,            -- the last run that listed it
        contact_id TEXT,
        outcome TEXT,
        disposition TEXT,
        duration INTEGER,
        decision TEXT NOT NULL,          -- archive | skip | quarantine
        reason TEXT NOT NULL DEFAULT '',
        retention_days INTEGER,
        state TEXT NOT NULL,             -- pending | archived | skipped | quarantined | failed
        batch_id TEXT,
        PRIMARY KEY (campaign_id, attempt_id)
    ) WITHOUT ROWID;
    CREATE INDEX attempts_run_state ON attempts (run_id, state);
    CREATE INDEX attempts_batch ON attempts (batch_id) WHERE batch_id IS NOT NULL;
    -- keyset paging over what is still to be batched stays cheap on large campaigns
    CREATE INDEX attempts_unbatched ON attempts (campaign_id, attempt_id)
        WHERE state = 'pending' AND batch_id IS NULL;
    CREATE TABLE batches (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        campaign_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        composition TEXT NOT NULL,       -- sha256 of the sorted attempt ids
        size INTEGER NOT NULL,
        status TEXT NOT NULL,            -- prepared | done | failed
        done_run TEXT,                   -- the run that recorded its outcome
        archived_count INTEGER,
        failed_count INTEGER,
        response TEXT,
        error TEXT,
        created_at TEXT NOT NULL,
        done_at TEXT
    );
    CREATE INDEX batches_open ON batches (campaign_id, status);
    CREATE INDEX batches_composition ON batches (campaign_id, composition);
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL,
        sink TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL,            -- pending | delivered | disabled
        tries INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        delivered_at TEXT,
        receipt TEXT,                    -- what the sink reported (the audit log: path, seq, hash)
        UNIQUE (event_id, sink)
    );
    CREATE INDEX outbox_pending ON outbox (sink, status, seq);
    CREATE TABLE pauses (
        campaign_id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        previous_status TEXT NOT NULL,
        paused_at TEXT NOT NULL
    );
    """,
    # 2: attempts_unbatched goes. The query it was made for reads attempts_run_state
    # (run_id, state, then the key), which the planner prefers; the partial index only
    # cost a write per listed attempt and another when the attempt joined a batch.
    """
    DROP INDEX IF EXISTS attempts_unbatched;
    """,
    # 3: what a record said of itself is kept (an archive body sends the record's own
    # values, never a constant), every run names the target it ran against, and the
    # store remembers the one target it belongs to (store_meta 'target').
    """
    ALTER TABLE attempts ADD COLUMN anonymized INTEGER;   -- 1 | 0 | NULL (not listed with one)
    ALTER TABLE runs ADD COLUMN target TEXT NOT NULL DEFAULT '';  -- JSON: backend, host, tenant
    CREATE TABLE store_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 4: backends other than the campaign archive. A listing paged from an update time
    # goes on from a durable watermark per campaign and source; an attempt keeps what its
    # backend needs to act on it later (handle, JSON) and its update time; a pause keeps
    # what was dialing (JSON) so exactly that is restarted. Portable SQL only (the state
    # store has a PostgreSQL twin): TEXT columns, no rowid tricks.
    """
    CREATE TABLE watermarks (
        campaign_id TEXT NOT NULL,
        source TEXT NOT NULL,            -- the listing it belongs to (source.type)
        value TEXT NOT NULL,             -- where the next run lists from
        updated_at TEXT NOT NULL,
        PRIMARY KEY (campaign_id, source)
    );
    ALTER TABLE attempts ADD COLUMN handle TEXT;       -- JSON object, or NULL
    ALTER TABLE attempts ADD COLUMN updated_at TEXT;   -- the record's own update time
    ALTER TABLE pauses ADD COLUMN dialing TEXT;        -- JSON: what the backend paused
    UPDATE pauses SET dialing = '{"status": "' || previous_status || '"}' WHERE dialing IS NULL;
    """,
)


def unreadable_version(where: object, version: int) -> str | None:
    """Why a command that only reads cannot read a store at schema ``version`` (it
    neither migrates nor writes); None when this archiver reads that version."""
    if version == len(MIGRATIONS):
        return None
    return (
        f"state store {where} has schema version {version}, this archiver reads version "
        f"{len(MIGRATIONS)}; "
        + ("upgrade archiver" if version > len(MIGRATIONS)
           else "a run of this archiver upgrades it (it needs write access)")
    )

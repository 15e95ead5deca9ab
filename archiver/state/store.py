"""The state store: the single source of truth of a run.

Every listed attempt, its decision and final state, every batch (composition,
idempotency key, status, API response), the sink outbox and the campaigns we
paused live here. Writes go through short transactions under one lock, so the
store can be shared by the run's worker threads.

One class, one set of queries, two databases: SQLite in the state folder (the
default, :mod:`archiver.state.sqlite`) and PostgreSQL, shared by runs on many
machines (:mod:`archiver.state.postgres`). The SQL is written once, in the subset
both understand (``?`` placeholders, ``ON CONFLICT``, no rowid), and translated for
PostgreSQL by :mod:`archiver.state.dialect`. Runs sharing a PostgreSQL store lock
the campaigns and sinks they work on (:mod:`archiver.state.locks`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from archiver.engine.records import FINAL_STATES, Decision
from archiver.errors import ConfigError, StateError
from archiver.state import sqlite
from archiver.state.backend import Backend, Db
from archiver.state.location import PostgresUrl, StateLocation, describe
from archiver.state.locks import FolderLocks, Locks, SessionLocks, lock_key
from archiver.target import Target

log = logging.getLogger(__name__)

DB_NAME = sqlite.DB_NAME
# store_meta keys: the target the store belongs to, and the running totals of its runs.
TARGET_KEY = "target"
TOTALS_KEY = "totals"
# How long a run's last delivery waits for another run delivering the same sink.
DELIVERY_WAIT_SECONDS = 10.0
# Ids in one IN (...) list: well under SQLite's and PostgreSQL's limits on parameters.
_IN_CHUNK = 500

# An attempt row keeps its decision when it is archived, or when it belongs to a
# batch whose fate is not yet known (sent, no recorded response).
# (The kept values are named with their table: PostgreSQL reads a bare column
# name beside ``excluded`` as ambiguous.)
_UPSERT = """
INSERT INTO attempts (campaign_id, attempt_id, run_id, contact_id, outcome, disposition,
                      duration, anonymized, decision, reason, retention_days, state, batch_id,
                      handle, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)
ON CONFLICT (campaign_id, attempt_id) DO UPDATE SET
    run_id = excluded.run_id,
    contact_id = CASE WHEN {keep} THEN attempts.contact_id ELSE excluded.contact_id END,
    outcome = CASE WHEN {keep} THEN attempts.outcome ELSE excluded.outcome END,
    disposition = CASE WHEN {keep} THEN attempts.disposition ELSE excluded.disposition END,
    duration = CASE WHEN {keep} THEN attempts.duration ELSE excluded.duration END,
    anonymized = CASE WHEN {keep} THEN coalesce(attempts.anonymized, excluded.anonymized)
                 ELSE excluded.anonymized END,
    decision = CASE WHEN {keep} THEN attempts.decision ELSE excluded.decision END,
    reason = CASE WHEN {keep} THEN attempts.reason ELSE excluded.reason END,
    retention_days = CASE WHEN {keep} THEN attempts.retention_days ELSE excluded.retention_days END,
    state = CASE WHEN {keep} THEN attempts.state ELSE excluded.state END,
    handle = CASE WHEN {keep} THEN attempts.handle ELSE excluded.handle END,
    updated_at = CASE WHEN {keep} THEN attempts.updated_at ELSE excluded.updated_at END
""".format(keep="(attempts.state = 'archived' OR attempts.batch_id IS NOT NULL)")

# What an archive item is built from (PendingItem.from_row).
_ITEM_COLUMNS = (
    "attempt_id, contact_id, outcome, disposition, duration, retention_days, run_id, anonymized,"
    " handle, updated_at"
)
_STATE_OF = {"archive": "pending", "skip": "skipped", "quarantine": "quarantined", "hold": "held"}
# Every state an attempt of a run can be in other than archived.
_NOT_ARCHIVED = ("pending", *(s for s in FINAL_STATES if s != "archived"))


def _in_lists(ids: Sequence[str]) -> Iterator[tuple[str, list[str]]]:
    """``(?, ?, ...)`` placeholders and their ids, for ``IN`` lists of bounded length."""
    for start in range(0, len(ids), _IN_CHUNK):
        part = list(ids[start:start + _IN_CHUNK])
        yield ", ".join("?" * len(part)), part


def _count_where(status: str) -> str:
    return f"sum(CASE WHEN status = '{status}' THEN 1 ELSE 0 END)"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PendingItem(NamedTuple):
    """An attempt waiting for (or inside) an archive batch.

    A named tuple: a run makes one per attempt it archives, straight from a row.
    """

    attempt_id: str
    contact_id: str
    outcome: str
    disposition: str
    duration: int
    retention_days: int
    run_id: str
    # The record's own flag; only True ever reaches an archive body. None: the backend
    # lists no such flag.
    anonymized: bool | None
    handle: str | None = None  # JSON: what the backend needs to act on the attempt
    updated_at: str | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> PendingItem:
        """From ``_ITEM_COLUMNS``; the stored flag (1, 0 or NULL) becomes a bool or None."""
        aid, contact, outcome, disposition, duration, days, run_id, anonymized, handle, at = row
        flag = None if anonymized is None else anonymized == 1
        return cls(aid, contact, outcome, disposition, duration, days, run_id, flag, handle, at)


@dataclass(frozen=True, slots=True)
class StoredBatch:
    id: str
    run_id: str
    campaign_id: str
    seq: int
    idempotency_key: str
    size: int
    status: str


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    seq: int
    event_id: str
    sink: str
    kind: str
    body: str
    tries: int


class Store:
    """The state store at ``location``: a state folder (SQLite, created when missing) or
    a ``postgresql://`` URL (its tables created when missing)."""

    def __init__(self, location: StateLocation, *, create: bool = True) -> None:
        self.location = location
        self._lock = threading.RLock()
        self._backend: Backend
        if isinstance(location, PostgresUrl):
            # Imported here: psycopg is loaded only by runs that use PostgreSQL.
            from archiver.state.postgres import PostgresBackend

            self._backend = PostgresBackend(location, create=create)
        else:
            self._backend = sqlite.SqliteBackend(location)
        self.where = self._backend.where
        self._locks: Locks = SessionLocks(self._query) if self._backend.shared else FolderLocks()
        self._target = ""  # the target campaign locks are for (set by start_run)

    @classmethod
    def open_existing(cls, location: StateLocation) -> Store:
        """The store runs left at ``location``; StateError when there is none (where
        ``Store()`` would create an empty one, a mistyped path should say so)."""
        if isinstance(location, PostgresUrl):
            return cls(location, create=False)
        if not sqlite.exists(location):
            raise StateError(
                f"no state store in {location} (no run has used it; pass --state DIR or --policy FILE)"
            )
        return cls(location)

    @property
    def shared(self) -> bool:
        """Runs on other machines may use this store at once (PostgreSQL)."""
        return self._backend.shared

    # -- plumbing -------------------------------------------------------------
    def close(self) -> None:
        """Closing a PostgreSQL store ends its session, and every lock the run held."""
        with self._lock:
            self._backend.close()

    @contextmanager
    def tx(self) -> Iterator[Db]:
        with self._lock:
            try:
                with self._backend.transaction() as db:
                    yield db
            except self._backend.errors as err:
                raise self._backend.fault(err) from err

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._backend.query(sql, args)
            except self._backend.errors as err:
                raise self._backend.fault(err) from err

    @property
    def schema_version(self) -> int:
        with self._lock:
            try:
                return self._backend.schema_version()
            except self._backend.errors as err:
                raise self._backend.fault(err) from err

    # -- locks between runs sharing the store ------------------------------------
    # A state folder is held whole by its run (run.lock): every lock here is granted.
    # A PostgreSQL store's runs hold session advisory locks that die with them.
    def _campaign_key(self, campaign_id: str) -> int:
        return lock_key("campaign", self._target, campaign_id)

    def try_lock_campaign(self, campaign_id: str) -> bool:
        """Take the campaign (of the store's target) for this run until
        :meth:`unlock_campaign` or the end of the run; False when another run, on this
        machine or another, holds it."""
        return self._locks.try_lock(self._campaign_key(campaign_id))

    def unlock_campaign(self, campaign_id: str) -> None:
        self._locks.unlock(self._campaign_key(campaign_id))

    def campaign_holder(self, campaign_id: str) -> str:
        """Who holds the campaign, as the report says it: ``held by archiver run ID (pid N
        at HOST)``, or ``held by another run`` when the server does not say."""
        who = self._locks.holder(self._campaign_key(campaign_id))
        return f"held by {who}" if who else "held by another run"

    def own_sinks(self, sinks: Iterable[str]) -> None:
        """This run delivers ``sinks`` (outbox names) while it lives: runs sharing the
        store do not count their undelivered events as orphaned meanwhile."""
        for sink in sinks:
            self._locks.try_lock(lock_key("sink-owner", sink), shared=True)

    @contextmanager
    def delivering(self, sink: str, *, wait: bool = True) -> Iterator[bool]:
        """Deliver ``sink`` alone: yields False when another run is delivering it (it
        delivers every pending event, ours included, until none is left). ``wait`` waits
        a little for it to finish first."""
        key = lock_key("sink-delivery", sink)
        got = self._locks.try_lock(key)
        deadline = time.monotonic() + (DELIVERY_WAIT_SECONDS if wait else 0.0)
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
            got = self._locks.try_lock(key)
        try:
            yield got
        finally:
            if got:
                self._locks.unlock(key)

    # -- runs -----------------------------------------------------------------
    def start_run(
        self, run_id: str, policy_name: str, policy_sha256: str, target: Target | None = None
    ) -> None:
        """Record a run against ``target``. The first run binds the store to its target;
        a run against another is refused (ConfigError) before anything is written.
        (``archiver run`` always names its target; None records a run without one.)"""
        # Held for the run's life: runs sharing the store tell it from a dead one by this.
        self._locks.try_lock(lock_key("run", run_id))
        self._backend.label(f"archiver run {run_id}")
        with self.tx() as db:
            if target is not None:
                self._bind_target(db, target)
            # Runs that died without finishing (a live run on another machine goes on).
            running = [r for (r,) in db.execute("SELECT id FROM runs WHERE status = 'running'")
                       .fetchall() if self._locks.is_free(lock_key("run", r))]
            for marks, ids in _in_lists(running):
                db.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = ?"
                    f" WHERE status = 'running' AND id IN ({marks})",
                    (now(), *ids),
                )
            db.execute(
                "INSERT INTO runs (id, policy_name, policy_sha256, started_at, status, target)"
                " VALUES (?, ?, ?, ?, 'running', ?)",
                (run_id, policy_name, policy_sha256, now(), target.to_json() if target else ""),
            )

    def check_target(self, target: Target) -> None:
        """ConfigError when the store belongs to another target than ``target``."""
        bound = self.meta(TARGET_KEY)
        if bound is not None:
            self._refuse_other(bound, target)

    def _bind_target(self, db: Db, target: Target) -> None:
        self._target = target.to_json()
        row = db.execute("SELECT value FROM store_meta WHERE key = ?", (TARGET_KEY,)).fetchone()
        if row is None:
            db.execute(
                "INSERT INTO store_meta (key, value) VALUES (?, ?)", (TARGET_KEY, target.to_json())
            )
        else:
            self._refuse_other(str(row[0]), target)

    def _refuse_other(self, bound_json: str, target: Target) -> None:
        bound = Target.from_json(bound_json)
        if bound == target:
            return
        # One store, one target: a simulator's run must never share (or pass for) the
        # history of a production tenant, nor one tenant's another's.
        raise ConfigError(
            f"{describe(self.location)} belongs to {bound or bound_json}, not to "
            f"{target}: use another --state {'store' if self.shared else 'folder'} for this target"
        )

    def finish_run(self, run_id: str, status: str, exit_code: int, report: dict[str, Any]) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE runs SET status = ?, exit_code = ?, finished_at = ?, report = ? WHERE id = ?",
                (status, exit_code, now(), json.dumps(report), run_id),
            )

    _RUN_KEYS = (
        "id", "policy_name", "policy_sha256", "started_at", "finished_at", "status", "exit_code",
        "report", "target",
    )

    def _run_rows(
        self, where: str, args: Sequence[Any], limit: int | None
    ) -> list[dict[str, Any]]:
        # Run ids begin with their start time: they order runs started in the same ms.
        rows = self._query(
            f"SELECT {', '.join(self._RUN_KEYS)} FROM runs {where} ORDER BY started_at DESC,"
            f" id DESC{'' if limit is None else ' LIMIT ?'}",
            (*args, *(() if limit is None else (limit,))),
        )
        out = []
        for row in rows:
            item = dict(zip(self._RUN_KEYS, row, strict=True))
            item["report"] = json.loads(item["report"]) if item["report"] else None
            # Runs from before targets were recorded have none.
            found = Target.from_json(item["target"])
            item["target"] = found.as_dict() if found else None
            out.append(item)
        return out

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._run_rows("", (), limit)

    def runs_starting_with(self, prefix: str) -> list[dict[str, Any]]:
        """The runs whose id starts with ``prefix`` (only those are read and parsed)."""
        return self._run_rows("WHERE substr(id, 1, length(?)) = ?", (prefix, prefix), None)

    # -- store_meta -------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM store_meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO store_meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def add_to_totals(
        self, scope: str, counts: Sequence[tuple[str, Mapping[str, str], float]]
    ) -> None:
        """Add (name, labels, amount) to the store's running totals of ``scope`` (a policy),
        in one transaction: totals only grow, run after run, like Prometheus counters."""
        with self.tx() as db:
            row = db.execute("SELECT value FROM store_meta WHERE key = ?", (TOTALS_KEY,)).fetchone()
            totals: dict[str, Any] = json.loads(row[0]) if row else {}
            mine = totals.setdefault(scope, {})
            for name, labels, amount in counts:
                series = mine.setdefault(name, {})
                key = json.dumps(dict(labels), sort_keys=True)
                series[key] = series.get(key, 0) + amount
            db.execute(
                "INSERT INTO store_meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (TOTALS_KEY, json.dumps(totals, sort_keys=True)),
            )

    def totals(self, scope: str) -> list[tuple[str, dict[str, str], float]]:
        """The running totals of ``scope``: (name, labels, total)."""
        raw = self.meta(TOTALS_KEY)
        totals: dict[str, Any] = json.loads(raw) if raw else {}
        return [
            (name, json.loads(key), float(value))
            for name, series in sorted(totals.get(scope, {}).items())
            for key, value in sorted(series.items())
        ]

    # -- campaigns --------------------------------------------------------------
    def set_campaign(self, run_id: str, campaign_id: str, status: str, reason: str = "") -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO campaigns (run_id, campaign_id, status, reason) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (run_id, campaign_id) DO UPDATE SET status = excluded.status,"
                " reason = excluded.reason",
                (run_id, campaign_id, status, reason),
            )

    def campaign_status(self, run_id: str, campaign_id: str) -> tuple[str, str] | None:
        rows = self._query(
            "SELECT status, reason FROM campaigns WHERE run_id = ? AND campaign_id = ?",
            (run_id, campaign_id),
        )
        return (rows[0][0], rows[0][1]) if rows else None

    # -- listing ----------------------------------------------------------------
    def record_listed(self, run_id: str, campaign_id: str, decisions: Sequence[Decision]) -> None:
        """Upsert one page of decisions; attempts already archived or in flight keep theirs."""
        rows = []
        for d in decisions:
            a = d.attempt
            rows.append(
                (
                    campaign_id,
                    d.attempt_id,
                    run_id,
                    a.contact_id if a else None,
                    a.outcome if a else None,
                    a.disposition if a else None,
                    a.duration if a else None,
                    (1 if a.anonymized else 0) if a and a.anonymized is not None else None,
                    d.kind,
                    d.reason,
                    d.retention_days,
                    _STATE_OF[d.kind],
                    json.dumps(dict(a.handle), sort_keys=True) if a and a.handle else None,
                    a.updated_at if a else None,
                )
            )
        with self.tx() as db:
            db.executemany(_UPSERT, rows)

    def unbatched(
        self, run_id: str, campaign_id: str, after: str, limit: int, *, anonymized_only: bool = True
    ) -> list[PendingItem]:
        """Pending attempts of the run not yet in a batch, in attempt id order. Only
        attempts whose record said anonymized: true (see ``quarantine_unanonymized``),
        unless ``anonymized_only`` is off (a backend that lists no such flag)."""
        flag = " AND anonymized = 1" if anonymized_only else ""
        rows = self._query(
            f"SELECT {_ITEM_COLUMNS}"
            " FROM attempts WHERE campaign_id = ? AND state = 'pending' AND batch_id IS NULL"
            f" AND attempt_id > ? AND run_id = ?{flag} ORDER BY attempt_id LIMIT ?",
            (campaign_id, after, run_id, limit),
        )
        return [PendingItem.from_row(row) for row in rows]

    def quarantine_unanonymized(self, run_id: str, campaign_id: str) -> int:
        """The last line of defence: a pending attempt whose record was not listed with
        anonymized: true is quarantined, whatever the policy's filters let through."""
        with self.tx() as db:
            return db.execute(
                "UPDATE attempts SET state = 'quarantined', decision = 'quarantine',"
                " reason = 'not anonymized' WHERE run_id = ? AND campaign_id = ?"
                " AND state = 'pending' AND batch_id IS NULL AND coalesce(anonymized, 0) != 1",
                (run_id, campaign_id),
            ).rowcount

    def hold_pending(self, run_id: str, campaign_id: str, held: Mapping[str, str]) -> int:
        """Record ``held`` (attempt id -> reason) the run's pending attempts of the campaign
        that a legal hold now covers, before they are batched. Ones already in a batch,
        or no longer pending, are left alone."""
        with self.tx() as db:
            return sum(
                db.execute(
                    "UPDATE attempts SET state = 'held', decision = 'hold', reason = ?"
                    " WHERE campaign_id = ? AND attempt_id = ? AND run_id = ?"
                    " AND state = 'pending' AND batch_id IS NULL",
                    (reason, campaign_id, attempt_id, run_id),
                ).rowcount
                for attempt_id, reason in held.items()
            )

    # -- batches ----------------------------------------------------------------
    def prepare_batch(
        self,
        batch_id: str,
        run_id: str,
        campaign_id: str,
        seq: int,
        key: str,
        composition: str,
        attempt_ids: Sequence[str],
    ) -> None:
        """Commit a batch's composition and key before its POST is sent.

        Ids and keys follow from the attempts, so a batch formed again (its earlier try
        closed without archiving any of them: refused, or every item failed) is the same
        batch tried again: its row is opened anew, with the same key.
        """
        with self.tx() as db:
            earlier = db.execute(
                "SELECT status, coalesce(archived_count, 0) FROM batches WHERE id = ?",
                (batch_id,),
            ).fetchone()
            if earlier is not None and (earlier[0] == "prepared" or earlier[1] > 0):
                raise StateError(
                    f"batch {batch_id} of campaign {campaign_id} is formed again although it "
                    f"is {'still open' if earlier[0] == 'prepared' else 'archived'}"
                )
            db.execute(
                "INSERT INTO batches (id, run_id, campaign_id, seq, idempotency_key, composition,"
                " size, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'prepared', ?)"
                " ON CONFLICT (id) DO UPDATE SET run_id = excluded.run_id, seq = excluded.seq,"
                " status = 'prepared', created_at = excluded.created_at, done_run = NULL,"
                " archived_count = NULL, failed_count = NULL, response = NULL, error = NULL,"
                " done_at = NULL",
                (batch_id, run_id, campaign_id, seq, key, composition, len(attempt_ids), now()),
            )
            # One statement per batch, not one per attempt: the store lock is the
            # run's narrowest point when many batches are in flight.
            for marks, ids in _in_lists(attempt_ids):
                db.execute(
                    f"UPDATE attempts SET batch_id = ? WHERE campaign_id = ? AND attempt_id IN ({marks})",
                    (batch_id, campaign_id, *ids),
                )

    def open_batches(self, campaign_id: str) -> list[StoredBatch]:
        rows = self._query(
            "SELECT id, run_id, campaign_id, seq, idempotency_key, size, status FROM batches"
            " WHERE campaign_id = ? AND status = 'prepared' ORDER BY created_at, run_id, seq",
            (campaign_id,),
        )
        return [StoredBatch(*row) for row in rows]

    def batch_items(self, batch_id: str) -> list[PendingItem]:
        rows = self._query(
            f"SELECT {_ITEM_COLUMNS} FROM attempts WHERE batch_id = ? ORDER BY attempt_id",
            (batch_id,),
        )
        return [PendingItem.from_row(row) for row in rows]

    def max_batch_seq(self, run_id: str, campaign_id: str) -> int:
        rows = self._query(
            "SELECT coalesce(max(seq), 0) FROM batches WHERE run_id = ? AND campaign_id = ?",
            (run_id, campaign_id),
        )
        return int(rows[0][0])

    def batch_done(
        self,
        batch: StoredBatch,
        *,
        run_id: str,
        archived_ids: Sequence[str],
        failed: dict[str, str],
        response: dict[str, Any] | None,
        events: Sequence[tuple[str, str, str, str]] = (),
    ) -> None:
        """Record a batch's outcome, its attempts' final states and its sink events at once.

        ``failed`` maps attempt id to reason; those leave the batch so a later run
        retries them with a new one. ``events`` are (event_id, sink, kind, body).
        """
        with self.tx() as db:
            db.execute(
                "UPDATE batches SET status = 'done', archived_count = ?, failed_count = ?,"
                " response = ?, done_at = ?, done_run = ? WHERE id = ?",
                (len(archived_ids), len(failed), json.dumps(response), now(), run_id, batch.id),
            )
            for marks, ids in _in_lists(archived_ids):
                db.execute(
                    "UPDATE attempts SET state = 'archived', run_id = ?, reason = ''"
                    f" WHERE campaign_id = ? AND attempt_id IN ({marks})",
                    (run_id, batch.campaign_id, *ids),
                )
            if failed:
                db.executemany(
                    "UPDATE attempts SET state = 'failed', run_id = ?, batch_id = NULL, reason = ?"
                    " WHERE campaign_id = ? AND attempt_id = ?",
                    [(run_id, why, batch.campaign_id, aid) for aid, why in failed.items()],
                )
            self._enqueue(db, events)

    def batch_failed(
        self, batch: StoredBatch, *, run_id: str, error: str, sent: bool, state: str = "failed"
    ) -> None:
        """A batch that did not go through.

        ``sent=False``: the API certainly did not apply it (400, 403, 409): the batch is
        closed and its attempts, recorded in ``state`` (failed, or skipped when the
        policy skips a dialing campaign), are free for a new batch in a later run. ``sent=True``:
        its fate is unknown (retries exhausted on timeouts, 5xx): the batch stays open
        and the next run reconciles it with the listing or resends it with its key.
        """
        with self.tx() as db:
            if not sent:
                db.execute(
                    "UPDATE batches SET status = 'failed', error = ?, done_at = ? WHERE id = ?",
                    (error, now(), batch.id),
                )
                db.execute(
                    "UPDATE attempts SET state = ?, run_id = ?, reason = ?, batch_id = NULL"
                    " WHERE batch_id = ?",
                    (state, run_id, error, batch.id),
                )
            else:
                db.execute("UPDATE batches SET error = ? WHERE id = ?", (error, batch.id))
                db.execute(
                    "UPDATE attempts SET state = 'failed', run_id = ?, reason = ? WHERE batch_id = ?",
                    (run_id, error, batch.id),
                )

    def release_batch(
        self,
        batch: StoredBatch,
        *,
        keep: Sequence[str],
        run_id: str,
        events: Sequence[tuple[str, str, str, str]] = (),
    ) -> None:
        """Close an open batch found applied in part: ``keep`` ids were archived by it
        (they left the listing); the rest go back to pending for a fresh batch."""
        with self.tx() as db:
            self._enqueue(db, events)
            db.execute(
                "UPDATE batches SET status = 'done', archived_count = ?, failed_count = 0,"
                " response = ?, done_at = ?, done_run = ? WHERE id = ?",
                (len(keep), json.dumps({"reconciled": "from listing"}), now(), run_id, batch.id),
            )
            db.executemany(
                "UPDATE attempts SET state = 'archived', run_id = ? WHERE batch_id = ? AND attempt_id = ?",
                [(run_id, batch.id, a) for a in keep],
            )
            db.execute(
                "UPDATE attempts SET state = 'pending', batch_id = NULL WHERE batch_id = ?"
                " AND state != 'archived'",
                (batch.id,),
            )

    def fail_pending(self, run_id: str, campaign_id: str | None, reason: str) -> int:
        """Every attempt of the run still without a final state becomes ``failed``."""
        sql = "UPDATE attempts SET state = 'failed', reason = ? WHERE run_id = ? AND state = 'pending'"
        args: list[Any] = [reason, run_id]
        if campaign_id is not None:
            sql += " AND campaign_id = ?"
            args.append(campaign_id)
        with self.tx() as db:
            return db.execute(sql, args).rowcount

    def skip_pending(self, run_id: str, campaign_id: str, reason: str) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE attempts SET state = 'skipped', reason = ? WHERE run_id = ? AND campaign_id = ?"
                " AND state = 'pending' AND batch_id IS NULL",
                (reason, run_id, campaign_id),
            )

    # -- counts -----------------------------------------------------------------
    def archived_by_run(self, run_id: str) -> dict[str, int]:
        """Per campaign: attempts whose archive call this run made (or reconciled)."""
        return {
            c: int(n)
            for c, n in self._query(
                "SELECT campaign_id, coalesce(sum(archived_count), 0) FROM batches"
                " WHERE done_run = ? GROUP BY campaign_id",
                (run_id,),
            )
        }

    def counts(self, run_id: str) -> dict[str, dict[str, int]]:
        """Per campaign: attempts of the run by final state."""
        out: dict[str, dict[str, int]] = {}
        for campaign, state, n in self._query(
            "SELECT campaign_id, state, count(*) FROM attempts WHERE run_id = ?"
            " GROUP BY campaign_id, state",
            (run_id,),
        ):
            out.setdefault(campaign, {})[state] = n
        return out

    def pending_count(self, run_id: str, campaign_id: str) -> int:
        """Attempts of a campaign that still wait for an archive call."""
        return int(
            self._query(
                "SELECT count(*) FROM attempts WHERE run_id = ? AND state = 'pending'"
                " AND campaign_id = ?",
                (run_id, campaign_id),
            )[0][0]
        )

    def reasons(self, run_id: str) -> dict[str, list[tuple[str, str, int]]]:
        """Per campaign: (state, reason, count) of the run's attempts that were not archived.

        One query for the whole run, through the (run_id, state) index: only the
        attempts that were not archived are read.
        """
        out: dict[str, list[tuple[str, str, int]]] = {}
        for campaign, state, reason, n in self._query(
            "SELECT campaign_id, state, reason, count(*) FROM attempts WHERE run_id = ?"
            f" AND state IN ({', '.join('?' * len(_NOT_ARCHIVED))})"
            " GROUP BY campaign_id, state, reason ORDER BY campaign_id, count(*) DESC, state, reason",
            (run_id, *_NOT_ARCHIVED),
        ):
            out.setdefault(campaign, []).append((state, reason, n))
        return out

    # -- outbox -----------------------------------------------------------------
    @staticmethod
    def _enqueue(db: Db, events: Sequence[tuple[str, str, str, str]]) -> None:
        db.executemany(
            "INSERT OR IGNORE INTO outbox (event_id, sink, kind, body, status, created_at)"
            " VALUES (?, ?, ?, ?, 'pending', ?)",
            [(*e, now()) for e in events],
        )

    def enqueue(self, events: Sequence[tuple[str, str, str, str]]) -> None:
        with self.tx() as db:
            self._enqueue(db, events)

    def pending_events(self, sink: str, limit: int = 100) -> list[OutboxEvent]:
        rows = self._query(
            "SELECT seq, event_id, sink, kind, body, tries FROM outbox"
            " WHERE sink = ? AND status = 'pending' ORDER BY seq LIMIT ?",
            (sink, limit),
        )
        return [OutboxEvent(*row) for row in rows]

    def event_delivered(self, seq: int, receipt: str | None = None) -> None:
        self.events_delivered([(seq, receipt)])

    def events_delivered(self, delivered: Sequence[tuple[int, str | None]]) -> None:
        """Mark events delivered, (seq, receipt) each, in one transaction."""
        stamp = now()
        with self.tx() as db:
            db.executemany(
                "UPDATE outbox SET status = 'delivered', tries = tries + 1, delivered_at = ?,"
                " last_error = '', receipt = ? WHERE seq = ?",
                [(stamp, receipt, seq) for seq, receipt in delivered],
            )

    def audit_checkpoint(self, path: Path) -> tuple[int, str] | None:
        """The last (seq, hash) the store saw written to the audit log at ``path``."""
        target = str(path.resolve())
        rows = self._query(
            "SELECT receipt FROM outbox WHERE status = 'delivered' AND receipt IS NOT NULL"
            " AND kind != '' ORDER BY seq DESC"
        )
        for (receipt,) in rows:
            data = json.loads(receipt)
            if data.get("path") == target:
                return int(data["seq"]), str(data["hash"])
        return None

    def event_failed(self, seq: int, error: str, *, disable: bool = False) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE outbox SET tries = tries + 1, last_error = ?,"
                " status = CASE WHEN ? = 1 THEN 'disabled' ELSE status END WHERE seq = ?",
                (error, 1 if disable else 0, seq),
            )

    def outbox_summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for sink, status, n in self._query(
            "SELECT sink, status, count(*) FROM outbox GROUP BY sink, status"
        ):
            out.setdefault(sink, {})[status] = n
        return out

    def undelivered_by_sink(self) -> dict[str, int]:
        """Events still to deliver (pending, or kept after their endpoint was gone) by sink.
        In a shared store, not those of sinks a live run delivers (``own_sinks``)."""
        return {
            sink: int(n)
            for sink, n in self._query(
                "SELECT sink, count(*) FROM outbox WHERE status IN ('pending', 'disabled')"
                " GROUP BY sink ORDER BY sink"
            )
            if self._locks.is_free(lock_key("sink-owner", sink))
        }

    def outbox_sinks(self) -> list[str]:
        return [r[0] for r in self._query("SELECT DISTINCT sink FROM outbox ORDER BY sink")]

    def sink_receipt_paths(self, sink: str) -> set[str]:
        """The files a sink's delivered events name in their receipts (an audit log's)."""
        paths: set[str] = set()
        for (receipt,) in self._query(
            "SELECT receipt FROM outbox WHERE sink = ? AND status = 'delivered'"
            " AND receipt IS NOT NULL",
            (sink,),
        ):
            path = json.loads(receipt).get("path")
            if isinstance(path, str):
                paths.add(path)
        return paths

    def rename_sink(self, old: str, new: str) -> int:
        """Every event of sink ``old`` now belongs to ``new`` (an outbox name migrated)."""
        with self.tx() as db:
            return db.execute(
                # An event already under the new name stays where it is (the old copy too).
                "UPDATE outbox SET sink = ? WHERE sink = ? AND NOT EXISTS (SELECT 1 FROM"
                " outbox AS named WHERE named.sink = ? AND named.event_id = outbox.event_id)",
                (new, old, new),
            ).rowcount

    def drop_undelivered(self, sink: str, note: str) -> int:
        """Mark a sink's undelivered events ``dropped``: kept, with ``note`` as their last
        word, and never delivered. Nothing is deleted."""
        with self.tx() as db:
            return db.execute(
                "UPDATE outbox SET status = 'dropped',"
                " last_error = ? || CASE WHEN last_error = '' THEN '' ELSE '; before: ' || last_error END"
                " WHERE sink = ? AND status IN ('pending', 'disabled')",
                (note, sink),
            ).rowcount

    def outbox_by_sink(self) -> list[dict[str, Any]]:
        """Per sink: events by status and the oldest one still undelivered."""
        rows = self._query(
            "SELECT sink,"
            f" {', '.join(_count_where(s) for s in ('pending', 'disabled', 'delivered', 'dropped'))},"
            " min(CASE WHEN status IN ('pending', 'disabled') THEN created_at END)"
            " FROM outbox GROUP BY sink ORDER BY sink"
        )
        keys = ("sink", "pending", "disabled", "delivered", "dropped", "oldest_undelivered")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    # -- pauses -----------------------------------------------------------------
    def record_pause(self, campaign_id: str, run_id: str, previous_status: str) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO pauses (campaign_id, run_id, previous_status, paused_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (campaign_id) DO UPDATE SET"
                " run_id = excluded.run_id, previous_status = excluded.previous_status,"
                " paused_at = excluded.paused_at",
                (campaign_id, run_id, previous_status, now()),
            )

    def clear_pause(self, campaign_id: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM pauses WHERE campaign_id = ?", (campaign_id,))

    def pauses(self) -> list[tuple[str, str]]:
        """Campaigns a run paused and did not resume. In a shared store only those this
        run can lock (and now holds until it ends): a live run resumes its own."""
        return [
            (c, s) for c, s in self._query("SELECT campaign_id, previous_status FROM pauses")
            if self.try_lock_campaign(c)
        ]

    def record_dialing(self, campaign_id: str, run_id: str, dialing: Mapping[str, Any]) -> None:
        """What the backend is about to pause (its own JSON), before it is paused."""
        with self.tx() as db:
            db.execute(
                "INSERT INTO pauses (campaign_id, run_id, previous_status, paused_at, dialing)"
                " VALUES (?, ?, '', ?, ?) ON CONFLICT (campaign_id) DO UPDATE SET"
                " run_id = excluded.run_id, previous_status = excluded.previous_status,"
                " paused_at = excluded.paused_at, dialing = excluded.dialing",
                (campaign_id, run_id, now(), json.dumps(dict(dialing), sort_keys=True)),
            )

    def paused_dialing(self) -> list[tuple[str, dict[str, Any]]]:
        """Campaigns a run paused and did not resume, with what was paused. In a shared
        store only those this run can lock (and now holds until it ends): a run still
        archiving a campaign it paused, on any machine, resumes it itself."""
        return [
            (c, json.loads(d)) for c, d in self._query(
                "SELECT campaign_id, dialing FROM pauses WHERE dialing IS NOT NULL"
                " ORDER BY campaign_id"
            )
            if self.try_lock_campaign(c)
        ]

    # -- watermarks -------------------------------------------------------------
    def watermark(self, campaign_id: str, source: str) -> str | None:
        """Where the campaign's ``source`` listing goes on from (None: from the start)."""
        rows = self._query(
            "SELECT value FROM watermarks WHERE campaign_id = ? AND source = ?",
            (campaign_id, source),
        )
        return str(rows[0][0]) if rows else None

    def set_watermark(self, campaign_id: str, source: str, value: str) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO watermarks (campaign_id, source, value, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (campaign_id, source) DO UPDATE SET"
                " value = excluded.value, updated_at = excluded.updated_at",
                (campaign_id, source, value, now()),
            )

"""Pruning: the finished history a store no longer needs, removed in one transaction.

What goes, for runs finished before the cutoff (``clock() - older_than``):
- the run's row (its report) and its campaigns' rows;
- its attempts in a final state other than archived (skipped, quarantined, failed,
  held) that are in no batch: a later run that lists one again decides it afresh, as
  it would have anyway (only an archived attempt, or one in an open batch, keeps its
  row when listed again);
- its batches that are closed and archived nothing (refused, or every item failed);
and, for the whole outbox, events delivered before the cutoff and created before the
oldest run still marked running started.

What stays, whatever its age:
- every archived attempt, and every batch that archived something: together they are
  the ledger that keeps an attempt listed again by a later run from being archived
  again (the attempt keeps its state, its batch id and so its batch's key and answer);
- every open batch (prepared, or sent with no known outcome) and its attempts, and the
  run that prepared it; every attempt still pending;
- everything of a run still marked running;
- every event not delivered (pending, disabled by its endpoint, dropped);
- for every sink and every file its receipts name, the latest delivered event with a
  receipt: ``audit_checkpoint`` and the outbox's sink migration read the same after a
  prune as before;
- pauses, watermarks, the store's target and its running totals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from archiver.audit import receipt
from archiver.clock import stamp
from archiver.state.backend import Db
from archiver.state.conn import Connection, in_lists, wrong_type

TABLES = ("runs", "campaigns", "attempts", "batches", "outbox")
_FINAL_NOT_ARCHIVED = "('skipped', 'quarantined', 'failed', 'held')"
_PRUNABLE_RUNS = (
    "SELECT id FROM runs WHERE status != 'running' AND finished_at IS NOT NULL"
    " AND finished_at < ? AND NOT EXISTS (SELECT 1 FROM batches AS open"
    " WHERE open.run_id = runs.id AND open.status = 'prepared') ORDER BY id"
)
# Per pruned run, in this order (a table, and which of the run's rows go).
_PER_RUN = (
    ("campaigns", "run_id IN ({ids})"),
    ("attempts", f"run_id IN ({{ids}}) AND state IN {_FINAL_NOT_ARCHIVED} AND batch_id IS NULL"),
    ("batches", "run_id IN ({ids}) AND status IN ('done', 'failed')"
                " AND coalesce(archived_count, 0) = 0 AND NOT EXISTS"
                " (SELECT 1 FROM attempts AS member WHERE member.batch_id = batches.id)"),
    ("runs", "id IN ({ids})"),
)


@dataclass(frozen=True, slots=True)
class Pruned:
    cutoff: str  # what finished (or was delivered) before this went
    removed: dict[str, int]  # rows per table: removed, or that would be on a dry run
    dry_run: bool


def prune(conn: Connection, older_than: timedelta, *, dry_run: bool = False) -> Pruned:
    """Remove (or, ``dry_run``, count) the history finished before ``older_than`` ago."""
    if older_than < timedelta(0):
        raise ValueError(f"older_than must not be negative: {older_than}")
    cutoff = stamp(conn.clock() - older_than)
    removed = dict.fromkeys(TABLES, 0)
    with conn.tx() as db:
        oldest_running = _oldest_running(conn, db)
        runs = [r for (r,) in db.execute(_PRUNABLE_RUNS, (cutoff,)).fetchall()]
        for marks, ids in in_lists(runs):
            for table, where in _PER_RUN:
                removed[table] += _remove(db, table, where.format(ids=marks), ids, dry_run)
        removed["outbox"] = _prune_outbox(db, cutoff, oldest_running, dry_run)
    return Pruned(cutoff, removed, dry_run)


def _remove(db: Db, table: str, where: str, args: list[Any], dry_run: bool) -> int:
    if dry_run:
        return int(db.execute(f"SELECT count(*) FROM {table} WHERE {where}", args).fetchone()[0])
    return db.execute(f"DELETE FROM {table} WHERE {where}", args).rowcount


def _oldest_running(conn: Connection, db: Db) -> str | None:
    """When the oldest run still marked running started (None: no run is); StateError
    naming a run whose start is not text, as archiver writes it (it is compared with
    the cutoff)."""
    starts = []
    for run_id, started in db.execute(
        "SELECT id, started_at FROM runs WHERE status = 'running'"
    ).fetchall():
        problem = wrong_type(started, str)
        if problem:
            raise conn.damaged(f"run {run_id} has runs.started_at {started!r}, {problem}")
        starts.append(started)
    return min(starts, default=None)


def _prune_outbox(db: Db, cutoff: str, oldest_running: str | None, dry_run: bool) -> int:
    # An event of a run is created after the run started: none of a run still marked
    # running is older than the oldest such start.
    created_before = min(cutoff, oldest_running) if oldest_running else cutoff
    kept = _receipts_kept(
        db.execute(
            "SELECT seq, sink, kind, receipt FROM outbox WHERE status = 'delivered'"
            " AND receipt IS NOT NULL"
        ).fetchall()
    )
    old = [
        seq for (seq,) in db.execute(
            "SELECT seq FROM outbox WHERE status = 'delivered' AND delivered_at < ?"
            " AND created_at < ? ORDER BY seq",
            (cutoff, created_before),
        ).fetchall()
        if seq not in kept
    ]
    if dry_run:
        return len(old)
    for marks, seqs in in_lists(old):
        db.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", seqs)
    return len(old)


def _receipts_kept(rows: Iterable[tuple[int, str, str, str]]) -> set[int]:
    """The latest delivered event with a receipt for each (sink, file) it names, and for
    each file among events with a kind (what ``audit_checkpoint`` reads)."""
    latest: dict[tuple[str, str] | str, int] = {}
    for seq, sink, kind, text in rows:
        path = receipt.path_of(text)
        if path is None:
            continue
        for key in ((sink, path), *((path,) if kind else ())):
            latest[key] = max(seq, latest.get(key, seq))
    return set(latest.values())

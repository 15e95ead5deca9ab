"""Archive batches (the ``batches`` table): each batch's composition and idempotency key,
committed before it is sent, then its outcome with its attempts' final states and its
sink events, in one transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from archiver.errors import StateError
from archiver.state.attempts import ITEM_COLUMNS, PendingItem
from archiver.state.conn import Connection, in_lists, wrong_type
from archiver.state.events import Event, enqueue

# Per campaign, the attempts the batches a run recorded archived (or reconciled).
ARCHIVED_BY_RUN = (
    "SELECT campaign_id, coalesce(sum(archived_count), 0) FROM batches"
    " WHERE done_run = ? GROUP BY campaign_id"
)
# Per campaign, the attempts of those that the run did not list: members of an earlier
# run's open batch found gone from the listing (``Batches.release`` leaves their run
# alone). The run's own calls archive only attempts it listed, in batches it formed: only
# batches another run formed are joined with their attempts.
RECONCILED_BY_RUN = (
    "SELECT batches.campaign_id, count(*) FROM batches JOIN attempts"
    " ON attempts.batch_id = batches.id AND attempts.campaign_id = batches.campaign_id"
    " WHERE batches.done_run = ? AND batches.run_id != batches.done_run"
    " AND attempts.state = 'archived' AND attempts.run_id != ?"
    " GROUP BY batches.campaign_id"
)


# What each column of an open batch holds, as a run reconciling or resending it takes
# them (its id finds its attempts, its key goes with the resent call).
_STORED_TYPES: tuple[tuple[str, type], ...] = (
    ("id", str), ("run_id", str), ("campaign_id", str), ("seq", int), ("idempotency_key", str),
    ("size", int), ("status", str),
)


@dataclass(frozen=True, slots=True)
class StoredBatch:
    id: str
    run_id: str
    campaign_id: str
    seq: int
    idempotency_key: str
    size: int
    status: str


class Batches:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def prepare(
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

        Ids and keys follow from the request (the attempts, their listed values and
        decided retention, the policy's archive flags), so a batch formed again with the
        same request (its earlier try closed without archiving any of them: refused, or
        every item failed) is the same batch tried again: its row is opened anew, with
        the same key.
        """
        with self._conn.tx() as db:
            earlier = db.execute(
                "SELECT status, coalesce(archived_count, 0) FROM batches WHERE id = ?",
                (batch_id,),
            ).fetchone()
            problem = None if earlier is None else wrong_type(earlier[1], int)
            if problem:
                # Whether the earlier try archived any of them cannot be told.
                raise self._conn.damaged(
                    f"batch {batch_id} of campaign {campaign_id} has archived_count "
                    f"{earlier[1]!r}, {problem}"
                )
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
                (batch_id, run_id, campaign_id, seq, key, composition, len(attempt_ids),
                 self._conn.now()),
            )
            # One statement per batch, not one per attempt: the store lock is the
            # run's narrowest point when many batches are in flight.
            for marks, ids in in_lists(attempt_ids):
                db.execute(
                    f"UPDATE attempts SET batch_id = ? WHERE campaign_id = ? AND attempt_id IN ({marks})",
                    (batch_id, campaign_id, *ids),
                )

    def open(self, campaign_id: str) -> list[StoredBatch]:
        rows = self._conn.query(
            "SELECT id, run_id, campaign_id, seq, idempotency_key, size, status FROM batches"
            " WHERE campaign_id = ? AND status = 'prepared' ORDER BY created_at, run_id, seq",
            (campaign_id,),
        )
        return [self._stored(row) for row in rows]

    def _stored(self, row: Sequence[Any]) -> StoredBatch:
        batch = StoredBatch(*row)
        for name, kind in _STORED_TYPES:
            value = getattr(batch, name)
            problem = wrong_type(value, kind)
            if problem:
                raise self._conn.damaged(
                    f"batch {batch.id} of campaign {batch.campaign_id} has {name} {value!r}, "
                    f"{problem}"
                )
        return batch

    def items(self, batch_id: str) -> list[PendingItem]:
        """The attempts of a batch; StateError naming the first whose values are not what
        archiver stores (a run reconciling the batch sorts, compares and reports them
        before any is sent)."""
        rows = self._conn.query(
            f"SELECT {ITEM_COLUMNS} FROM attempts WHERE batch_id = ? ORDER BY attempt_id",
            (batch_id,),
        )
        items = [PendingItem.from_row(row) for row in rows]
        for item in items:
            problem = item.damage(f" of batch {batch_id}")
            if problem:
                raise self._conn.damaged(problem)
        return items

    def max_seq(self, run_id: str, campaign_id: str) -> int:
        rows = self._conn.query(
            "SELECT coalesce(max(seq), 0) FROM batches WHERE run_id = ? AND campaign_id = ?",
            (run_id, campaign_id),
        )
        return int(rows[0][0])

    def done(
        self,
        batch: StoredBatch,
        *,
        run_id: str,
        archived_ids: Sequence[str],
        failed: dict[str, str],
        response: dict[str, Any] | None,
        events: Sequence[Event] = (),
    ) -> None:
        """Record a batch's outcome, its attempts' final states and its sink events at once.

        ``failed`` maps attempt id to reason; those leave the batch so a later run
        retries them with a new one. ``events`` are (event_id, sink, kind, body).
        """
        at = self._conn.now()
        with self._conn.tx() as db:
            db.execute(
                "UPDATE batches SET status = 'done', archived_count = ?, failed_count = ?,"
                " response = ?, done_at = ?, done_run = ? WHERE id = ?",
                (len(archived_ids), len(failed), json.dumps(response), at, run_id, batch.id),
            )
            for marks, ids in in_lists(archived_ids):
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
            enqueue(db, events, at)

    def failed(
        self, batch: StoredBatch, *, run_id: str, error: str, sent: bool, state: str = "failed"
    ) -> None:
        """A batch that did not go through.

        ``sent=False``: the API certainly did not apply it (400, 403, 409): the batch is
        closed and its attempts, recorded in ``state`` (failed, or skipped when the
        policy skips a dialing campaign), are free for a new batch in a later run. ``sent=True``:
        its fate is unknown (retries exhausted on timeouts, 5xx): the batch stays open
        and the next run reconciles it with the listing or resends it with its key.
        """
        at = self._conn.now()
        with self._conn.tx() as db:
            if not sent:
                db.execute(
                    "UPDATE batches SET status = 'failed', error = ?, done_at = ? WHERE id = ?",
                    (error, at, batch.id),
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

    def release(
        self,
        batch: StoredBatch,
        *,
        keep: Sequence[str],
        run_id: str,
        events: Sequence[Event] = (),
    ) -> None:
        """Close an open batch found applied in part: ``keep`` ids were archived by it
        (they left the listing); the rest go back to pending for a fresh batch.

        The kept attempts keep their ``run_id``, the last run that listed them: the run
        closing the batch did not list them, nor did its calls archive them. Its report
        counts them apart, as ``reconciled`` (``reconciled_by_run``)."""
        at = self._conn.now()
        with self._conn.tx() as db:
            enqueue(db, events, at)
            db.execute(
                "UPDATE batches SET status = 'done', archived_count = ?, failed_count = 0,"
                " response = ?, done_at = ?, done_run = ? WHERE id = ?",
                (len(keep), json.dumps({"reconciled": "from listing"}), at, run_id, batch.id),
            )
            db.executemany(
                "UPDATE attempts SET state = 'archived' WHERE batch_id = ? AND attempt_id = ?",
                [(batch.id, a) for a in keep],
            )
            db.execute(
                "UPDATE attempts SET state = 'pending', batch_id = NULL WHERE batch_id = ?"
                " AND state != 'archived'",
                (batch.id,),
            )

    def archived_by_run(self, run_id: str) -> dict[str, int]:
        """Per campaign: attempts whose archive call this run made (or reconciled)."""
        return {c: int(n) for c, n in self._conn.query(ARCHIVED_BY_RUN, (run_id,))}

    def reconciled_by_run(self, run_id: str) -> dict[str, int]:
        """Per campaign: attempts this run found archived by an earlier run's open batch
        (gone from its listing); ``archived_by_run`` counts them too."""
        return {
            c: int(n) for c, n in self._conn.query(RECONCILED_BY_RUN, (run_id, run_id))
        }

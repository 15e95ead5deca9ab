"""Listed attempts and their decisions (the ``attempts`` table).

One row per attempt of a campaign, the last run that listed it, its decision and its
state. A row in state ``archived`` is the ledger that keeps the attempt from being
archived again by a later run that lists it again: it is never pruned."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from archiver.engine.records import FINAL_STATES, Decision
from archiver.state.conn import Connection, in_lists, wrong_type

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
ITEM_COLUMNS = (
    "attempt_id, contact_id, outcome, disposition, duration, retention_days, run_id, anonymized,"
    " handle, updated_at"
)
_STATE_OF = {"archive": "pending", "skip": "skipped", "quarantine": "quarantined", "hold": "held"}
# Every state an attempt of a run can be in other than archived.
NOT_ARCHIVED = ("pending", *(s for s in FINAL_STATES if s != "archived"))
# The columns of a stored attempt an archive body, an archive file or a batch's event
# carries, and what they hold. Every attempt decided archive has its retention decided
# (the policy's default at least): the body of an archive call needs one.
ITEM_TYPES: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("attempt_id", (str,)), ("contact_id", (str, type(None))), ("outcome", (str, type(None))),
    ("disposition", (str, type(None))), ("duration", (int, type(None))),
    ("retention_days", (int,)), ("updated_at", (str, type(None))),
)


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
        """From ``ITEM_COLUMNS``; the stored flag (1, 0 or NULL) becomes a bool or None."""
        aid, contact, outcome, disposition, duration, days, run_id, anonymized, handle, at = row
        flag = None if anonymized is None else anonymized == 1
        return cls(aid, contact, outcome, disposition, duration, days, run_id, flag, handle, at)

    def damage(self, of: str = "") -> str | None:
        """How a value read back is not what archiver stored there (SQLite keeps whatever
        is written, a blob in a text column say): "attempt A has attempts.duration b'3',
        not a number", ``of`` after the id (" of batch B"); None when every one is."""
        for column, kinds in ITEM_TYPES:
            value = getattr(self, column)
            # Checked inline (once per archived attempt); the helper only words it.
            if not isinstance(value, kinds) or isinstance(value, bool):
                aid = self.attempt_id
                shown = aid if isinstance(aid, str) else repr(aid)
                problem = wrong_type(value, kinds)
                return f"attempt {shown}{of} has attempts.{column} {value!r}, {problem}"
        return None


def _listed_row(run_id: str, campaign_id: str, d: Decision) -> tuple[Any, ...]:
    a = d.attempt
    return (
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


class Attempts:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def record_listed(self, run_id: str, campaign_id: str, decisions: Sequence[Decision]) -> None:
        """Upsert one page of decisions; attempts already archived or in flight keep theirs."""
        rows = [_listed_row(run_id, campaign_id, d) for d in decisions]
        with self._conn.tx() as db:
            db.executemany(_UPSERT, rows)

    def unbatched(
        self, run_id: str, campaign_id: str, after: str, limit: int, *, anonymized_only: bool = True
    ) -> list[PendingItem]:
        """Pending attempts of the run not yet in a batch, in attempt id order. Only
        attempts whose record said anonymized: true (see ``quarantine_unanonymized``),
        unless ``anonymized_only`` is off (a backend that lists no such flag)."""
        flag = " AND anonymized = 1" if anonymized_only else ""
        rows = self._conn.query(
            f"SELECT {ITEM_COLUMNS}"
            " FROM attempts WHERE campaign_id = ? AND state = 'pending' AND batch_id IS NULL"
            f" AND attempt_id > ? AND run_id = ?{flag} ORDER BY attempt_id LIMIT ?",
            (campaign_id, after, run_id, limit),
        )
        return [PendingItem.from_row(row) for row in rows]

    def unbatched_contacts(
        self, run_id: str, campaign_id: str, after: tuple[str, str], limit: int, *,
        anonymized_only: bool = True,
    ) -> list[PendingItem]:
        """Like ``unbatched``, in (contact, attempt id) order after ``after``, and never
        a part of a contact: the chunk ends before a contact it cannot hold whole, unless
        that contact is the chunk's only one (then the chunk is all its attempts)."""
        select = (
            f"SELECT {ITEM_COLUMNS} FROM attempts WHERE campaign_id = ? AND state = 'pending'"
            " AND batch_id IS NULL AND run_id = ?"
            + (" AND anonymized = 1" if anonymized_only else "")
        )
        rows = self._conn.query(
            f"{select} AND (contact_id > ? OR (contact_id = ? AND attempt_id > ?))"
            " ORDER BY contact_id, attempt_id LIMIT ?",
            (campaign_id, run_id, after[0], after[0], after[1], limit + 1),
        )
        items = [PendingItem.from_row(row) for row in rows]
        if len(items) <= limit or items[limit].contact_id != items[limit - 1].contact_id:
            return items[:limit]
        last = items[limit - 1].contact_id
        whole = [i for i in items[:limit] if i.contact_id != last]
        if whole:
            return whole
        rest = self._conn.query(
            f"{select} AND contact_id = ? ORDER BY attempt_id", (campaign_id, run_id, last)
        )
        return [PendingItem.from_row(row) for row in rest]

    def quarantine_unanonymized(self, run_id: str, campaign_id: str) -> int:
        """The last line of defence: a pending attempt whose record was not listed with
        anonymized: true is quarantined, whatever the policy's filters let through."""
        with self._conn.tx() as db:
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
        with self._conn.tx() as db:
            return sum(
                db.execute(
                    "UPDATE attempts SET state = 'held', decision = 'hold', reason = ?"
                    " WHERE campaign_id = ? AND attempt_id = ? AND run_id = ?"
                    " AND state = 'pending' AND batch_id IS NULL",
                    (reason, campaign_id, attempt_id, run_id),
                ).rowcount
                for attempt_id, reason in held.items()
            )

    def held_contacts(
        self, run_id: str, campaign_id: str, contact_ids: Sequence[str]
    ) -> dict[str, str]:
        """Of these contacts, those with an attempt the run recorded held: contact -> the
        reason of its first held attempt."""
        found: dict[str, str] = {}
        for marks, chunk in in_lists(sorted(set(contact_ids))):
            for contact, reason in self._conn.query(
                "SELECT contact_id, reason FROM attempts WHERE run_id = ? AND campaign_id = ?"
                f" AND state = 'held' AND contact_id IN ({marks}) ORDER BY attempt_id",
                (run_id, campaign_id, *chunk),
            ):
                found.setdefault(contact, reason)
        return found

    def fail_pending(self, run_id: str, campaign_id: str | None, reason: str) -> int:
        """Every attempt of the run still without a final state becomes ``failed``."""
        sql = "UPDATE attempts SET state = 'failed', reason = ? WHERE run_id = ? AND state = 'pending'"
        args: list[Any] = [reason, run_id]
        if campaign_id is not None:
            sql += " AND campaign_id = ?"
            args.append(campaign_id)
        with self._conn.tx() as db:
            return db.execute(sql, args).rowcount

    def skip_pending(self, run_id: str, campaign_id: str, reason: str) -> None:
        with self._conn.tx() as db:
            db.execute(
                "UPDATE attempts SET state = 'skipped', reason = ? WHERE run_id = ? AND campaign_id = ?"
                " AND state = 'pending' AND batch_id IS NULL",
                (reason, run_id, campaign_id),
            )

    def counts(self, run_id: str, campaign_id: str | None = None) -> dict[str, dict[str, int]]:
        """Per campaign (or of ``campaign_id`` alone): attempts of the run by final state.
        Each attempt keeps only the last run that listed it: read a campaign's while the
        run holds it (a run sharing the store may list it again next)."""
        out: dict[str, dict[str, int]] = {}
        only = "" if campaign_id is None else " AND campaign_id = ?"
        for campaign, state, n in self._conn.query(
            f"SELECT campaign_id, state, count(*) FROM attempts WHERE run_id = ?{only}"
            " GROUP BY campaign_id, state",
            (run_id, *(() if campaign_id is None else (campaign_id,))),
        ):
            out.setdefault(campaign, {})[state] = n
        return out

    def pending_count(self, run_id: str, campaign_id: str) -> int:
        """Attempts of a campaign that still wait for an archive call."""
        return int(
            self._conn.query(
                "SELECT count(*) FROM attempts WHERE run_id = ? AND state = 'pending'"
                " AND campaign_id = ?",
                (run_id, campaign_id),
            )[0][0]
        )

    def reasons(
        self, run_id: str, campaign_id: str | None = None
    ) -> dict[str, list[tuple[str, str, int]]]:
        """Per campaign (or of ``campaign_id`` alone): (state, reason, count) of the run's
        attempts that were not archived (read as ``counts``).

        One query, through the (run_id, state) index: only the attempts that were not
        archived are read.
        """
        out: dict[str, list[tuple[str, str, int]]] = {}
        only = "" if campaign_id is None else " AND campaign_id = ?"
        for campaign, state, reason, n in self._conn.query(
            "SELECT campaign_id, state, reason, count(*) FROM attempts WHERE run_id = ?"
            f" AND state IN ({', '.join('?' * len(NOT_ARCHIVED))}){only}"
            " GROUP BY campaign_id, state, reason ORDER BY campaign_id, count(*) DESC, state, reason",
            (run_id, *NOT_ARCHIVED, *(() if campaign_id is None else (campaign_id,))),
        ):
            out.setdefault(campaign, []).append((state, reason, n))
        return out

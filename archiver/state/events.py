"""The sink outbox (the ``outbox`` table): events waiting for their sinks, and what each
sink answered once it had them (a receipt; an audit log's is read back through
:mod:`archiver.audit.receipt`).

An event is enqueued in the same transaction as what it reports (a batch's outcome,
:mod:`archiver.state.batches`), so none is lost and none is sent for nothing.

An event a sink could not render (its template failed on it) is enqueued all the
same, ``unrendered``: its body is then the event's context (JSON), kept for a later
run to render once the template is fixed (``unrendered``, ``rendered``). The sink
delivers nothing past it until then (``pending``), so its order, and an audit log's
chain, has no hole."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archiver import jsonsafe
from archiver.audit import receipt
from archiver.state.backend import Db
from archiver.state.conn import Connection, wrong_type
from archiver.state.locks import lock_key

PENDING = "pending"
UNRENDERED = "unrendered"

# (event_id, sink, kind, body), as the outbox stores them; with a fifth item, the
# status to store it in (UNRENDERED: the body is the event's context, not yet rendered).
Event = tuple[str, str, str, str] | tuple[str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    seq: int
    event_id: str
    sink: str
    kind: str
    body: str
    tries: int


def enqueue(db: Db, events: Sequence[Event], at: str) -> None:
    """Add ``events`` in the transaction ``db`` (an event already there stays as it is)."""
    db.executemany(
        "INSERT OR IGNORE INTO outbox (event_id, sink, kind, body, status, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(*e[:4], e[4] if len(e) > 4 else PENDING, at) for e in events],
    )


def _give_up(sink: str) -> str:
    """What to do with a sink's undelivered events the store cannot hand it."""
    return (
        "give up the sink's undelivered events with "
        f"`archiver runs outbox --drop {shlex.quote(sink)}`"
    )


def _not_a_context(body: str) -> str | None:
    """How an unrendered event's body is not its context (a JSON object), else None."""
    try:
        context = jsonsafe.loads(body)
    except ValueError as err:
        return f"not JSON ({err})"
    return None if isinstance(context, dict) else f"JSON {type(context).__name__}, not an object"


def _count_where(status: str) -> str:
    return f"sum(CASE WHEN status = '{status}' THEN 1 ELSE 0 END)"


# Receipts read at a time looking for an audit log's last recorded line.
_CHECKPOINT_PAGE = 200


class Events:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def enqueue(self, events: Sequence[Event]) -> None:
        with self._conn.tx() as db:
            enqueue(db, events, self._conn.now())

    def pending(self, sink: str, limit: int = 100) -> list[OutboxEvent]:
        """The sink's next events to deliver, in order: none past an unrendered one."""
        rows = self._conn.query(
            "SELECT seq, event_id, sink, kind, body, tries FROM outbox"
            " WHERE sink = ? AND status = 'pending' AND NOT EXISTS (SELECT 1 FROM outbox AS"
            " kept WHERE kept.sink = outbox.sink AND kept.status = 'unrendered'"
            " AND kept.seq < outbox.seq) ORDER BY seq LIMIT ?",
            (sink, limit),
        )
        events = [OutboxEvent(*row) for row in rows]
        for event in events:
            self._check_event(event)
        return events

    def unrendered(self, sinks: Sequence[str]) -> list[OutboxEvent]:
        """The events of ``sinks`` kept unrendered (body: the event's context), in order."""
        if not sinks:
            return []
        marks = ", ".join("?" for _ in sinks)
        rows = self._conn.query(
            "SELECT seq, event_id, sink, kind, body, tries FROM outbox"
            f" WHERE status = 'unrendered' AND sink IN ({marks}) ORDER BY seq",
            tuple(sinks),
        )
        events = [OutboxEvent(*row) for row in rows]
        for event in events:
            self._check_event(event, kept=True)
        return events

    def _check_event(self, event: OutboxEvent, *, kept: bool = False) -> None:
        """StateError naming an event whose id, kind or body is not text (a sink renders,
        signs, writes and sends them as text), or, ``kept`` unrendered, whose body is not
        its context (a JSON object: ``kept_context``)."""
        for name in ("event_id", "kind"):
            value = getattr(event, name)
            problem = wrong_type(value, str)
            if problem:
                raise self._conn.damaged(
                    f"an outbox event of sink {event.sink} has {name} {value!r}, {problem}",
                    _give_up(event.sink),
                )
        problem = wrong_type(event.body, str)
        if problem is None and kept:
            problem = _not_a_context(event.body)
        if problem:
            what = "kept unrendered for sink" if kept else "for sink"
            body = "a context" if kept else "a body"
            raise self._conn.damaged(
                f"the {event.kind} event {event.event_id} {what} {event.sink} has {body}"
                f" (outbox.body) that is {problem}", _give_up(event.sink),
            )

    def rendered(self, seq: int, body: str) -> None:
        """An unrendered event now has its body: it is pending, in its place."""
        with self._conn.tx() as db:
            db.execute(
                "UPDATE outbox SET body = ?, status = 'pending' WHERE seq = ?"
                " AND status = 'unrendered'",
                (body, seq),
            )

    def delivered(self, seq: int, answer: str | None = None) -> None:
        self.delivered_many([(seq, answer)])

    def delivered_many(self, delivered: Sequence[tuple[int, str | None]]) -> None:
        """Mark events delivered, (seq, receipt) each, in one transaction."""
        at = self._conn.now()
        with self._conn.tx() as db:
            db.executemany(
                "UPDATE outbox SET status = 'delivered', tries = tries + 1, delivered_at = ?,"
                " last_error = '', receipt = ? WHERE seq = ?",
                [(at, answer, seq) for seq, answer in delivered],
            )

    def failed(self, seq: int, error: str, *, disable: bool = False) -> None:
        with self._conn.tx() as db:
            db.execute(
                "UPDATE outbox SET tries = tries + 1, last_error = ?,"
                " status = CASE WHEN ? = 1 THEN 'disabled' ELSE status END WHERE seq = ?",
                (error, 1 if disable else 0, seq),
            )

    def audit_checkpoint(self, path: Path) -> receipt.LastLine | None:
        """The last (seq, hash) the store saw written to the audit log at ``path``. Read
        newest first a page at a time (every run asks; the answer is nearly always on
        the first page), not the whole outbox's receipts at once."""
        wanted = str(path.resolve())
        before: Any = None
        while True:
            after = "" if before is None else " AND seq < ?"
            rows = self._conn.query(
                "SELECT seq, receipt FROM outbox WHERE status = 'delivered' AND receipt IS NOT NULL"
                f" AND kind != ''{after} ORDER BY seq DESC LIMIT ?",
                (*(() if before is None else (before,)), _CHECKPOINT_PAGE),
            )
            try:
                found = receipt.checkpoint((text for _, text in rows), wanted)
            except ValueError as err:
                raise self._conn.damaged(str(err)) from None
            if found is not None:
                return found.seq, found.hash
            if len(rows) < _CHECKPOINT_PAGE:
                return None
            before = rows[-1][0]

    def receipt_paths(self, sink: str) -> set[str]:
        """The files a sink's delivered events name in their receipts (an audit log's)."""
        rows = self._conn.query(
            "SELECT receipt FROM outbox WHERE sink = ? AND status = 'delivered'"
            " AND receipt IS NOT NULL",
            (sink,),
        )
        return {path for (text,) in rows if (path := receipt.path_of(text)) is not None}

    def summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for sink, status, n in self._conn.query(
            "SELECT sink, status, count(*) FROM outbox GROUP BY sink, status"
        ):
            out.setdefault(sink, {})[status] = n
        return out

    def undelivered_by_sink(self) -> dict[str, int]:
        """Events still to deliver (pending, unrendered, or kept after their endpoint was
        gone) by sink. In a shared store, not those of sinks a live run delivers
        (``own_sinks``)."""
        counts = [
            (self._sink_name(sink), int(n))
            for sink, n in self._conn.query(
                "SELECT sink, count(*) FROM outbox"
                " WHERE status IN ('pending', 'unrendered', 'disabled')"
                " GROUP BY sink ORDER BY sink"
            )
        ]
        return {
            sink: n for sink, n in counts if self._conn.locks.is_free(lock_key("sink-owner", sink))
        }

    def sinks(self) -> list[str]:
        return [self._sink_name(r[0])
                for r in self._conn.query("SELECT DISTINCT sink FROM outbox ORDER BY sink")]

    def _sink_name(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self._conn.damaged(f"an outbox event has sink {value!r}, {wrong_type(value, str)}")
        return value

    def rename_sink(self, old: str, new: str) -> int:
        """Every event of sink ``old`` now belongs to ``new`` (an outbox name migrated)."""
        with self._conn.tx() as db:
            return db.execute(
                # An event already under the new name stays where it is (the old copy too).
                "UPDATE outbox SET sink = ? WHERE sink = ? AND NOT EXISTS (SELECT 1 FROM"
                " outbox AS named WHERE named.sink = ? AND named.event_id = outbox.event_id)",
                (new, old, new),
            ).rowcount

    def drop_undelivered(self, sink: str, note: str) -> int:
        """Mark a sink's undelivered events ``dropped``: kept, with ``note`` as their last
        word, and never delivered. Nothing is deleted."""
        with self._conn.tx() as db:
            return db.execute(
                "UPDATE outbox SET status = 'dropped',"
                " last_error = ? || CASE WHEN last_error = '' THEN '' ELSE '; before: ' || last_error END"
                " WHERE sink = ? AND status IN ('pending', 'unrendered', 'disabled')",
                (note, sink),
            ).rowcount

    def by_sink(self) -> list[dict[str, Any]]:
        """Per sink: events by status (an unrendered one counts as pending) and the
        oldest one still undelivered."""
        rows = self._conn.query(
            "SELECT sink, sum(CASE WHEN status IN ('pending', 'unrendered') THEN 1 ELSE 0"
            f" END), {', '.join(_count_where(s) for s in ('disabled', 'delivered', 'dropped'))},"
            " min(CASE WHEN status IN ('pending', 'unrendered', 'disabled') THEN created_at END)"
            " FROM outbox GROUP BY sink ORDER BY sink"
        )
        keys = ("sink", "pending", "disabled", "delivered", "dropped", "oldest_undelivered")
        for sink, *_, oldest in rows:
            self._sink_name(sink)
            problem = wrong_type(oldest, (str, type(None)))
            if problem:
                raise self._conn.damaged(
                    f"an outbox event of sink {sink} has created_at {oldest!r}, {problem}"
                )
        return [dict(zip(keys, row, strict=True)) for row in rows]

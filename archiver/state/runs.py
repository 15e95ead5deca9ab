"""Runs and their reports (the ``runs`` table), and what the store keeps across runs in
``store_meta``: the one target it belongs to and the running totals of its runs."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeGuard

from archiver import jsonsafe
from archiver.engine.totals import dead_run_totals
from archiver.errors import ConfigError
from archiver.state.backend import Db
from archiver.state.batches import ARCHIVED_BY_RUN
from archiver.state.conn import Connection, in_lists, wrong_type
from archiver.state.location import StateLocation, describe
from archiver.state.locks import lock_key
from archiver.target import Target

# store_meta keys: the target the store belongs to, and the running totals of its runs.
TARGET_KEY = "target"
TOTALS_KEY = "totals"
_RUN_KEYS = (
    "id", "policy_name", "policy_sha256", "started_at", "finished_at", "status", "exit_code",
    "report", "target",
)

# What the other columns of a run hold, as every reader of runs takes them.
_RUN_TYPES: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("policy_name", str), ("policy_sha256", str), ("started_at", str),
    ("finished_at", (str, type(None))), ("status", str), ("exit_code", (int, type(None))),
)
# The parts of a report that readers (``runs``, ``evidence``) take apart, and their type.
_REPORT_PARTS: tuple[tuple[str, type], ...] = (
    ("policy", dict), ("totals", dict), ("campaigns", list),
)


_SQL_INT_MAX = 2**63 - 1  # SQLite's INTEGER and PostgreSQL's BIGINT


class Runs:
    def __init__(self, conn: Connection, location: StateLocation) -> None:
        self._conn = conn
        self._location = location

    def start(
        self, run_id: str, policy_name: str, policy_sha256: str, target: Target | None = None
    ) -> None:
        """Record a run against ``target``. The first run binds the store to its target;
        a run against another is refused (ConfigError) before anything is written.
        (``archiver run`` always names its target; None records a run without one.)"""
        locks = self._conn.locks
        # Held for the run's life: runs sharing the store tell it from a dead one by this.
        locks.try_lock(lock_key("run", run_id))
        self._conn.backend.label(f"archiver run {run_id}")
        at = self._conn.now()
        with self._readable_totals(), self._conn.tx() as db:
            # Read first: a run that could not add to them would refuse only at its end.
            _read_totals(db)
            if target is not None:
                self._bind_target(db, target)
            # Runs that died without finishing (a live run on another machine goes on).
            running = [r for r in self._running(db) if locks.is_free(lock_key("run", r))]
            for marks, ids in in_lists(running):
                db.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = ?"
                    f" WHERE status = 'running' AND id IN ({marks})",
                    (at, *ids),
                )
            for dead in running:
                _add_dead_run_totals(db, dead)
            db.execute(
                "INSERT INTO runs (id, policy_name, policy_sha256, started_at, status, target)"
                " VALUES (?, ?, ?, ?, 'running', ?)",
                (run_id, policy_name, policy_sha256, at, target.to_json() if target else ""),
            )

    def _running(self, db: Db) -> list[str]:
        """The ids of the runs still marked running; StateError for one without an id
        (each is looked up by its lock, then marked interrupted)."""
        ids = []
        for run_id, started_at in db.execute(
            "SELECT id, started_at FROM runs WHERE status = 'running'"
        ).fetchall():
            if not _is_run_id(run_id):
                raise self._conn.damaged(_no_id(run_id, started_at))
            ids.append(run_id)
        return ids

    def check_target(self, target: Target) -> None:
        """ConfigError when the store belongs to another target than ``target``."""
        bound = self.meta(TARGET_KEY)
        if bound is not None:
            self._refuse_other(bound, target)

    def _bind_target(self, db: Db, target: Target) -> None:
        self._conn.target = target.to_json()
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
        if bound is None:
            # Which target it is for cannot be told: not even this one can use it.
            raise self._conn.damaged(
                f"the target it belongs to (store_meta {TARGET_KEY!r}) is not a target "
                f"({bound_json[:80]!r})"
            )
        # One store, one target: a simulator's run must never share (or pass for) the
        # history of a production tenant, nor one tenant's another's.
        raise ConfigError(
            f"{describe(self._location)} belongs to {bound}, not to {target}: use "
            f"another --state {'store' if self._conn.backend.shared else 'folder'} for this target"
        )

    def finish(
        self, run_id: str, status: str, exit_code: int, report: dict[str, Any],
        totals: Sequence[tuple[str, Mapping[str, str], float]] = (),
    ) -> None:
        """Record the run's end, and add ``totals`` (name, labels, amount) to the running
        totals of its policy in the same transaction: a run killed in between has added
        nothing, and the next run adds what the store knows of it (see ``start``)."""
        with self._readable_totals(), self._conn.tx() as db:
            row = db.execute("SELECT policy_name FROM runs WHERE id = ?", (run_id,)).fetchone()
            db.execute(
                "UPDATE runs SET status = ?, exit_code = ?, finished_at = ?, report = ? WHERE id = ?",
                (status, exit_code, self._conn.now(), json.dumps(report), run_id),
            )
            if totals and row is not None:
                _add_totals(db, str(row[0]), totals)

    def _rows(self, where: str, args: Sequence[Any], limit: int | None) -> list[dict[str, Any]]:
        # Run ids begin with their start time: they order runs started in the same ms.
        rows = self._conn.query(
            f"SELECT {', '.join(_RUN_KEYS)} FROM runs {where} ORDER BY started_at DESC,"
            f" id DESC{'' if limit is None else ' LIMIT ?'}",
            (*args, *(() if limit is None else (limit,))),
        )
        out = []
        for row in rows:
            item = dict(zip(_RUN_KEYS, row, strict=True))
            if not _is_run_id(item["id"]):
                raise self._conn.damaged(_no_id(item["id"], item["started_at"]))
            for key, kinds in _RUN_TYPES:
                problem = wrong_type(item[key], kinds)
                if problem:
                    raise self._conn.damaged(f"run {item['id']} has runs.{key} {item[key]!r}, {problem}")
            item["report"] = self._report(item["id"], item["report"])
            # Runs from before targets were recorded have none.
            found = Target.from_json(item["target"])
            item["target"] = found.as_dict() if found else None
            out.append(item)
        return out

    def _report(self, run_id: str, text: Any) -> dict[str, Any] | None:
        """A run's report as stored (JSON text, or NULL while it runs); StateError naming
        the run when it is not a report: every reader takes it for one."""
        if not text:
            return None
        try:
            report = jsonsafe.loads(text)
        except (ValueError, TypeError) as err:
            raise self._conn.damaged(f"the report of run {run_id} is not JSON ({err})") from None
        if not isinstance(report, dict) or any(
            report.get(key) is not None and not isinstance(report[key], kind)
            for key, kind in _REPORT_PARTS
        ):
            raise self._conn.damaged(f"the report of run {run_id} is not a run report")
        return report

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest ``limit`` runs, newest first; a limit past what an SQL integer holds
        (``runs --limit`` is any whole number) is every run."""
        return self._rows("", (), limit if limit <= _SQL_INT_MAX else None)

    def starting_with(self, prefix: str) -> list[dict[str, Any]]:
        """The runs whose id starts with ``prefix`` (only those are read and parsed)."""
        return self._rows("WHERE substr(id, 1, length(?)) = ?", (prefix, prefix), None)

    @contextmanager
    def _readable_totals(self) -> Iterator[None]:
        try:
            yield
        except UnreadableTotals as err:
            raise self._conn.damaged(
                str(err), f"delete that row to count from zero again ({err.remedy})"
            ) from None

    # -- store_meta -------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        rows = self._conn.query("SELECT value FROM store_meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._conn.tx() as db:
            _put_meta(db, key, value)

    def add_to_totals(
        self, scope: str, counts: Sequence[tuple[str, Mapping[str, str], float]]
    ) -> None:
        """Add (name, labels, amount) to the store's running totals of ``scope`` (a policy),
        in one transaction: totals only grow, run after run, like Prometheus counters."""
        with self._readable_totals(), self._conn.tx() as db:
            _add_totals(db, scope, counts)

    def totals(self, scope: str) -> list[tuple[str, dict[str, str], float]]:
        """The running totals of ``scope``: (name, labels, total)."""
        with self._readable_totals():
            totals = _parse_totals(self.meta(TOTALS_KEY))
        return [
            (name, json.loads(key), float(value))
            for name, series in sorted(totals.get(scope, {}).items())
            for key, value in sorted(series.items())
        ]


def _is_run_id(value: Any) -> TypeGuard[str]:
    """A run's id as archiver writes it: the key of every reader of runs (SQLite keeps
    what is written whatever the column says, and a TEXT primary key takes NULL)."""
    return isinstance(value, str) and value != ""


def _no_id(run_id: Any, started_at: Any) -> str:
    return f"a run started at {started_at} has no id (runs.id {run_id!r})"


class UnreadableTotals(ValueError):
    """The running totals in ``store_meta`` are not what archiver writes there."""

    remedy = f"DELETE FROM store_meta WHERE key = '{TOTALS_KEY}'"


def _parse_totals(raw: Any) -> dict[str, Any]:
    """``store_meta`` 'totals': {policy: {metric: {labels as JSON text: amount}}}."""
    if not raw:
        return {}
    what = f"the running totals (store_meta {TOTALS_KEY!r})"
    try:
        totals = jsonsafe.loads(raw)
    except (ValueError, TypeError) as err:
        raise UnreadableTotals(f"{what} are not JSON ({err})") from None
    if not _are_counts(totals):
        raise UnreadableTotals(f"{what} are not counts by policy, metric and labels")
    return totals


def _are_counts(totals: Any) -> TypeGuard[dict[str, Any]]:
    """{policy: {metric: {labels as JSON text: a number}}}, as archiver writes them."""
    if not isinstance(totals, dict):
        return False
    metrics = list(totals.values())
    if not all(isinstance(m, dict) for m in metrics):
        return False
    series = [s for m in metrics for s in m.values()]
    if not all(isinstance(s, dict) for s in series):
        return False
    return all(
        _is_labels(key) and wrong_type(amount, (int, float)) is None
        for s in series for key, amount in s.items()
    )


def _is_labels(key: str) -> bool:
    try:
        labels = jsonsafe.loads(key)
    except ValueError:
        return False
    return isinstance(labels, dict) and all(isinstance(v, str) for v in labels.values())


def _read_totals(db: Db) -> dict[str, Any]:
    row = db.execute("SELECT value FROM store_meta WHERE key = ?", (TOTALS_KEY,)).fetchone()
    return _parse_totals(row[0] if row else None)


def _add_totals(
    db: Db, scope: str, counts: Sequence[tuple[str, Mapping[str, str], float]]
) -> None:
    totals = _read_totals(db)
    mine = totals.setdefault(scope, {})
    for name, labels, amount in counts:
        series = mine.setdefault(name, {})
        key = json.dumps(dict(labels), sort_keys=True)
        series[key] = series.get(key, 0) + amount
    _put_meta(db, TOTALS_KEY, json.dumps(totals, sort_keys=True))


def _add_dead_run_totals(db: Db, run_id: str) -> None:
    """What a run that died before finishing (killed, its machine gone) adds to its
    policy's totals: it counts as interrupted, and the attempts of the batches it
    recorded as archived by it (its API figures died with it)."""
    row = db.execute("SELECT policy_name FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        return
    archived = db.execute(ARCHIVED_BY_RUN, (run_id,)).fetchall()
    _add_totals(db, str(row[0]), dead_run_totals({str(c): int(n) for c, n in archived}))


def _put_meta(db: Db, key: str, value: str) -> None:
    db.execute(
        "INSERT INTO store_meta (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )

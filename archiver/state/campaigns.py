"""What the store keeps per campaign: its status in each run (``campaigns``), the
dialing a run paused and has still to restore (``pauses``), and where each of its
listings goes on from (``watermarks``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from archiver import jsonsafe
from archiver.state.conn import Connection, wrong_type


class Campaigns:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    # -- per run ----------------------------------------------------------------
    def set_status(self, run_id: str, campaign_id: str, status: str, reason: str = "") -> None:
        with self._conn.tx() as db:
            db.execute(
                "INSERT INTO campaigns (run_id, campaign_id, status, reason) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (run_id, campaign_id) DO UPDATE SET status = excluded.status,"
                " reason = excluded.reason",
                (run_id, campaign_id, status, reason),
            )

    def status(self, run_id: str, campaign_id: str) -> tuple[str, str] | None:
        rows = self._conn.query(
            "SELECT status, reason FROM campaigns WHERE run_id = ? AND campaign_id = ?",
            (run_id, campaign_id),
        )
        return (rows[0][0], rows[0][1]) if rows else None

    # -- pauses -----------------------------------------------------------------
    def record_pause(self, campaign_id: str, run_id: str, previous_status: str) -> None:
        with self._conn.tx() as db:
            db.execute(
                "INSERT INTO pauses (campaign_id, run_id, previous_status, paused_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (campaign_id) DO UPDATE SET"
                " run_id = excluded.run_id, previous_status = excluded.previous_status,"
                " paused_at = excluded.paused_at",
                (campaign_id, run_id, previous_status, self._conn.now()),
            )

    def clear_pause(self, campaign_id: str) -> None:
        with self._conn.tx() as db:
            db.execute("DELETE FROM pauses WHERE campaign_id = ?", (campaign_id,))

    def pauses(self) -> list[tuple[str, str]]:
        """Campaigns a run paused and did not resume. In a shared store only those this
        run can lock (and now holds until it ends): a live run resumes its own."""
        return [
            (c, s) for c, s in self._conn.query("SELECT campaign_id, previous_status FROM pauses")
            if self._conn.try_lock_campaign(self._paused_campaign(c))
        ]

    def record_dialing(self, campaign_id: str, run_id: str, dialing: Mapping[str, Any]) -> None:
        """What the backend is about to pause (its own JSON), before it is paused."""
        with self._conn.tx() as db:
            db.execute(
                "INSERT INTO pauses (campaign_id, run_id, previous_status, paused_at, dialing)"
                " VALUES (?, ?, '', ?, ?) ON CONFLICT (campaign_id) DO UPDATE SET"
                " run_id = excluded.run_id, previous_status = excluded.previous_status,"
                " paused_at = excluded.paused_at, dialing = excluded.dialing",
                (campaign_id, run_id, self._conn.now(), json.dumps(dict(dialing), sort_keys=True)),
            )

    def paused_dialing(self) -> list[tuple[str, dict[str, Any]]]:
        """Campaigns a run paused and did not resume, with what was paused. In a shared
        store only those this run can lock (and now holds until it ends): a run still
        archiving a campaign it paused, on any machine, resumes it itself."""
        return [
            (c, self._dialing(c, d)) for c, d in self._conn.query(
                "SELECT campaign_id, dialing FROM pauses WHERE dialing IS NOT NULL"
                " ORDER BY campaign_id"
            )
            if self._conn.try_lock_campaign(self._paused_campaign(c))
        ]

    def _paused_campaign(self, value: Any) -> str:
        """A paused campaign's id, as its lock and the backend take it."""
        problem = wrong_type(value, str)
        if problem:
            raise self._conn.damaged(
                f"a campaign a run paused has pauses.campaign_id {value!r}, {problem}",
                "resume the campaign by hand and delete its row from pauses",
            )
        return str(value)

    def _dialing(self, campaign_id: str, text: Any) -> dict[str, Any]:
        try:
            dialing = jsonsafe.loads(text)
        except (ValueError, TypeError):
            dialing = None
        if not isinstance(dialing, dict):
            raise self._conn.damaged(
                f"what campaign {campaign_id} was dialing when a run paused it (pauses.dialing)"
                " is not a JSON object", "resume the campaign by hand and delete its row from"
                " pauses",
            )
        return dialing

    # -- watermarks -------------------------------------------------------------
    def watermark(self, campaign_id: str, source: str) -> str | None:
        """Where the campaign's ``source`` listing goes on from (None: from the start)."""
        rows = self._conn.query(
            "SELECT value FROM watermarks WHERE campaign_id = ? AND source = ?",
            (campaign_id, source),
        )
        if not rows:
            return None
        value = rows[0][0]
        problem = wrong_type(value, str)
        if problem:
            raise self._conn.damaged(
                f"where campaign {campaign_id}'s {source} listing goes on from"
                f" (watermarks.value) is {value!r}, {problem}",
                "delete its row from watermarks (the next run lists from source.since again)",
            )
        return str(value)

    def set_watermark(self, campaign_id: str, source: str, value: str) -> None:
        with self._conn.tx() as db:
            db.execute(
                "INSERT INTO watermarks (campaign_id, source, value, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (campaign_id, source) DO UPDATE SET"
                " value = excluded.value, updated_at = excluded.updated_at",
                (campaign_id, source, value, self._conn.now()),
            )

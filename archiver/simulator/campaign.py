"""One campaign's mutable state: what is still listed, the archive ledger, the dialing status."""

from __future__ import annotations

from array import array
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from archiver.simulator.config import TUTORIAL_APPROVED
from archiver.simulator.dataset import CampaignData
from archiver.simulator.remaining import Remaining

LEDGER_MAX = 0xFFFF

IDLE = "IDLE"  # not dialing and never paused through the API
ACTIVE = "ACTIVE"  # dialing: archive calls are answered 409
PAUSED = "PAUSED"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CampaignState:
    """Callers hold the simulator's lock around every mutation."""

    def __init__(self, data: CampaignData, status: str) -> None:
        self.data = data
        self.remaining = Remaining(data.size)
        # One counter per attempt index rather than a dict keyed by id: 2 bytes per attempt.
        self.ledger = array("H", [0]) * data.size
        self.archived = 0  # distinct attempts archived at least once
        self.archive_events = 0  # every time an attempt was archived
        self.double_archived = 0  # attempts archived more than once
        self.status = status
        self.history: list[dict[str, str]] = [
            {"status": status, "source": "initial", "at": now_iso()}
        ]
        self._summary: dict[str, Any] | None = None

    def set_status(self, status: str, source: str) -> None:
        self.status = status
        self.history.append({"status": status, "source": source, "at": now_iso()})

    def archive(self, index: int) -> None:
        count = self.ledger[index]
        if count == 0:
            self.archived += 1
        elif count == 1:
            self.double_archived += 1
        self.ledger[index] = min(LEDGER_MAX, count + 1)
        self.archive_events += 1
        self.remaining.remove(index)

    def ledger_items(self) -> dict[str, int]:
        ledger = self.ledger
        if self.archived == 0:
            return {}
        return {self.data.attempt_id(i): c for i, c in enumerate(ledger) if c}

    def view(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "history": list(self.history),
            "attempts": self.data.size,
            "remaining": len(self.remaining),
            "archived": self.archived,
            "archive_events": self.archive_events,
            "double_archived": self.double_archived,
        }

    def summary(self) -> dict[str, Any]:
        """What a correct client should find; computed once, on first request."""
        if self._summary is None:
            self._summary = _summarize(self.data)
        return self._summary


def _summarize(data: CampaignData) -> dict[str, Any]:
    by_outcome: Counter[str] = Counter()
    malformed: Counter[str] = Counter()
    unanonymized = retention_present = retention_null = 0
    for i in range(data.size):
        d = data.draw(i)
        if d.malformed is not None:
            malformed[d.malformed] += 1
            continue
        if not d.anonymized:
            unanonymized += 1
            continue
        by_outcome[d.outcome] += 1
        if d.has_retention:
            retention_present += 1
            retention_null += d.retention is None
    return {
        # Counts below cover well-formed anonymized attempts unless named otherwise.
        "anonymized_by_outcome": dict(sorted(by_outcome.items())),
        "eligible_tutorial_outcomes": sum(by_outcome[o] for o in TUTORIAL_APPROVED),
        "unanonymized": unanonymized,  # well formed but not anonymized
        "malformed": sum(malformed.values()),
        "malformed_by_kind": dict(sorted(malformed.items())),
        "retention_present": retention_present,
        "retention_null": retention_null,
    }

"""Attempts generated on demand from (seed, campaign, index).

Nothing is stored per record, so a campaign of half a million attempts costs
no memory until it is listed: every field is drawn from one BLAKE2b digest
of (seed, campaign id, index).
"""

from __future__ import annotations

import hashlib
import struct
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from archiver.simulator.config import RETENTION_CHOICES, SimConfig

DISPOSITIONS: dict[str, str] = {
    "SURVEY_TAKEN": "COMPLETED",
    "NO_ANSWER": "NO_CONTACT",
    "BUSY": "NO_CONTACT",
    "DISCONNECTED": "FAILED",
    "ANSWERING_MACHINE": "MACHINE",
    "CALLBACK_REQUESTED": "CALLBACK",
    "DO_NOT_CALL": "DNC",
}
_SILENT_OUTCOMES = frozenset({"NO_ANSWER", "BUSY"})  # nobody talked: duration 0
_SCALE = float(2**64)


@dataclass(frozen=True, slots=True)
class Draw:
    """Everything random about one attempt."""

    contact_id: str
    outcome: str
    anonymized: bool
    malformed: str | None
    duration: int
    has_retention: bool  # whether the record carries a `retentionDays` key at all
    retention: int | None


def derive_campaign_ids(seed: int, count: int) -> list[str]:
    """Stable UUID-shaped campaign ids for a seed."""
    ids = []
    for n in range(count):
        h = hashlib.blake2b(f"campaign/{seed}/{n}".encode(), digest_size=16).hexdigest()
        ids.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}")
    return ids


def derive_tags(seed: int, campaign_ids: list[str]) -> list[str]:
    """A short tag per campaign, embedded in attempt ids to keep them unique across campaigns."""
    tags: list[str] = []
    for cid in campaign_ids:
        salt = 0
        while True:
            tag = hashlib.blake2b(f"tag/{seed}/{cid}/{salt}".encode(), digest_size=4).hexdigest()
            if tag not in tags:
                break
            salt += 1
        tags.append(tag)
    return tags


class CampaignData:
    """The attempts of one campaign, addressable by index or by attempt id."""

    def __init__(self, campaign_id: str, tag: str, config: SimConfig) -> None:
        self.campaign_id = campaign_id
        self.size = config.attempts_per_campaign
        self._key = f"{config.seed}/{campaign_id}/".encode()
        self._prefix = f"att-{tag}-"
        self._width = max(7, len(str(max(self.size - 1, 0))))
        self._outcomes = tuple(config.outcome_mix)
        total = sum(config.outcome_mix.values()) or 1.0
        self._cumulative = tuple(w / total for w in accumulate(config.outcome_mix.values()))
        self._unanonymized = config.unanonymized_rate
        self._malformed = config.malformed_rate
        self._kinds = tuple(config.malformed_kinds)
        self._retention = config.retention_rate
        self._retention_null = config.retention_null_share

    def attempt_id(self, index: int) -> str:
        return f"{self._prefix}{index:0{self._width}d}"

    def index_of(self, attempt_id: str) -> int | None:
        """The index behind an attempt id of this campaign, or None for a foreign id."""
        if not attempt_id.startswith(self._prefix):
            return None
        digits = attempt_id[len(self._prefix) :]
        if len(digits) != self._width or not digits.isascii() or not digits.isdigit():
            return None
        index = int(digits)
        return index if index < self.size else None

    def draw(self, index: int) -> Draw:
        digest = hashlib.blake2b(self._key + str(index).encode(), digest_size=48).digest()
        h = digest[:16].hex()
        u_outcome, u_anon, u_bad, u_ret = struct.unpack(">QQQQ", digest[16:])
        pick = min(bisect_right(self._cumulative, u_outcome / _SCALE), len(self._outcomes) - 1)
        outcome = self._outcomes[pick]
        malformed = None
        if u_bad / _SCALE < self._malformed:
            malformed = self._kinds[u_bad % len(self._kinds)]
        has_retention = u_ret / _SCALE < self._retention
        retention: int | None = None
        if has_retention and (u_ret & 0xFFFF) / 0x10000 >= self._retention_null:
            retention = RETENTION_CHOICES[(u_ret >> 16) % len(RETENTION_CHOICES)]
        return Draw(
            contact_id=f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}",
            outcome=outcome,
            anonymized=u_anon / _SCALE >= self._unanonymized,
            malformed=malformed,
            duration=0 if outcome in _SILENT_OUTCOMES else 5 + (u_anon & 0xFFFF) % 895,
            has_retention=has_retention,
            retention=retention,
        )

    def record(self, index: int) -> dict[str, Any]:
        """The attempt as the listing serves it."""
        d = self.draw(index)
        rec: dict[str, Any] = {
            "id": self.attempt_id(index),
            "contactId": d.contact_id,
            "outcomeCode": d.outcome,
            "disposition": DISPOSITIONS.get(d.outcome, "OTHER"),
            "duration": d.duration,
            "anonymized": d.anonymized,
        }
        if d.has_retention:
            rec["retentionDays"] = d.retention
        if d.malformed is not None:
            _break(rec, d.malformed)
        return rec

    def is_eligible(self, index: int, approved: set[str] | frozenset[str]) -> bool:
        """Well formed, anonymized and with an approved outcome."""
        d = self.draw(index)
        return d.malformed is None and d.anonymized and d.outcome in approved


def _break(rec: dict[str, Any], kind: str) -> None:
    if kind == "missing_contact_id":
        del rec["contactId"]
    elif kind == "empty_contact_id":
        rec["contactId"] = ""
    elif kind == "null_outcome":
        rec["outcomeCode"] = None
    elif kind == "string_duration":
        rec["duration"] = str(rec["duration"])
    elif kind == "negative_duration":
        rec["duration"] = -1 - rec["duration"]
    elif kind == "missing_anonymized":
        del rec["anonymized"]
    elif kind == "string_anonymized":
        rec["anonymized"] = "true" if rec["anonymized"] else "false"
    elif kind == "string_retention":
        rec["retentionDays"] = "365"
    elif kind == "missing_id":
        del rec["id"]
    elif kind == "null_id":
        rec["id"] = None
    elif kind == "empty_id":
        rec["id"] = ""
    elif kind == "empty_record":
        rec.clear()

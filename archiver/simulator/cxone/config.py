"""What the CXone simulator holds (:class:`CxoneSimConfig`, fixed at start) and how it
behaves (:class:`Behaviour`, changeable while it runs).

Settings named ``invented_*`` stand for behaviour no public source documents; the
simulator needs an answer, and the name keeps it from passing for a fact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

DEFAULT_DISPOSITIONS: tuple[str, ...] = (
    "Survey Taken",
    "No Answer",
    "Busy",
    "Disconnected",
    "Answering Machine",
    "Callback Requested",
    "Do Not Call",
)

ErrorShape = Literal["acd", "platform", "message"]


@dataclass(frozen=True, slots=True)
class CxoneSimConfig:
    """The tenant: credentials, campaigns with their contacts and skills, calling lists."""

    tenant_id: str = "5c2b8f3e-7d41-4b1a-9e0f-2a6c8d4e1b77"
    client_id: str = "sim-application"
    client_secret: str = "sim-application-secret-7Qx2"
    access_key_id: str = "sim-access-key"
    access_key_secret: str = "sim-access-key-secret=9Lp4"  # with '=': must be form-encoded
    seed: int = 7
    campaigns: int = 2  # ids 1834501, 1834502, ...
    contacts_per_campaign: int = 300
    # Contacts seeded with one lastUpdateTime: ties the listing must page through.
    same_time_group: int = 7
    skills_per_campaign: int = 2  # ids 40001, 40002, ... all running at start
    dispositions: tuple[str, ...] = DEFAULT_DISPOSITIONS
    no_disposition_share: float = 0.1
    call_lists: int = 1  # ids 4412, 4413, ...
    prospects_per_list: int = 120
    finalized_share: float = 0.8  # prospects whose calling is final
    seeded_from: str = "2026-09-01T00:00:00Z"
    request_log_size: int = 20_000


@dataclass(frozen=True, slots=True)
class Behaviour:
    """Faults and churn; ``CxoneSimulator.set(...)`` changes them while it runs."""

    token_lifetime_seconds: float = 3600.0
    # What the token answer says; None: the real lifetime. Longer than the real one, the
    # client learns of the expiry from a 401 (a revoked or early-expired token).
    reported_expires_in: float | None = None
    refresh_token_lifetime_seconds: float = 86_400.0
    # Contacts of the listed campaign updated after each contacts/completed answer: they
    # get a new lastUpdateTime and move to the end of the order.
    churn_per_request: int = 0
    # Share of them taken from the contacts the answer itself served: the ones a
    # client paging by offset is standing on, the worst case for it.
    churn_served_share: float = 0.5
    error_5xx_rate: float = 0.0
    latency_seconds: float = 0.0  # every API answer is held back this long
    error_shape: ErrorShape = "acd"  # body of injected errors: which of the three shapes
    ic_status_header: bool = True  # errors repeat their text in icStatusDescription
    # No published figure: a tenant-wide token bucket answering 429 without Retry-After.
    invented_rate_limit_rps: float = 0.0
    # Seconds a 429 names in Retry-After; None (CXone's usual): no header.
    invented_retry_after: int | None = None
    # updatedSince keeps records at its exact time (True) or only after it (False).
    invented_updated_since_inclusive: bool = True
    # GET dispositions and a calling list's attempts answer at most this many records
    # whatever `top` asks for (a community client reports that CXone's admin lists page
    # by at most 100); None: `top` is honoured.
    invented_list_max_top: int | None = None
    # Skills whose stop and start answer 409 (the documented status, meaning unknown).
    invented_conflict_skill_ids: frozenset[int] = frozenset()
    # A stop answers 202; the skill stops running this much later.
    invented_stop_delay_seconds: float = 0.0
    # Skills whose start answers 202 and never takes effect (accepted, then dropped).
    invented_dropped_start_skill_ids: frozenset[int] = frozenset()
    # removeProspects: these externalIds are reported in failedRecords with this code.
    remove_failures: Mapping[str, str] = field(default_factory=dict)
    # Per kind of call ("completed", "remove", "skill", ..., "token", "discovery"): the call does what it
    # does, then answers this (status, body) instead (a body cut short, a proxy's page,
    # JSON nested past any parser): a tenant's answer is not to be trusted.
    served_bodies: Mapping[str, tuple[int, bytes]] = field(default_factory=dict)
    # Per kind: headers sent with its served body (a Content-Encoding it is not in).
    served_headers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # resultCode values (not published).
    invented_removed_code: str = "Removed"
    invented_not_found_code: str = "ProspectNotFound"
    # removeProspects naming no prospect still on the list (a repeat of a removal whose
    # answer was lost): 200 with each in failedRecords, or this error status (NICE
    # documents a 404 for the call without saying when).
    invented_none_on_list_status: int = 200

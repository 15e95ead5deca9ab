"""What the simulator serves (``SimConfig``) and how it misbehaves (``Faults``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from archiver.simulator.webhooks import secret_key

# Outcome codes and their share of generated attempts. The first four are the
# ones the tutorial approves for archiving: about two thirds of all attempts.
DEFAULT_OUTCOME_MIX: dict[str, float] = {
    "SURVEY_TAKEN": 0.25,
    "NO_ANSWER": 0.20,
    "BUSY": 0.10,
    "DISCONNECTED": 0.12,
    "ANSWERING_MACHINE": 0.15,
    "CALLBACK_REQUESTED": 0.10,
    "DO_NOT_CALL": 0.08,
}

# The outcomes the tutorial approves; campaign summaries count eligible attempts for them.
TUTORIAL_APPROVED: frozenset[str] = frozenset({"SURVEY_TAKEN", "NO_ANSWER", "BUSY", "DISCONNECTED"})

# The receiver's secret unless one is given: a Standard Webhooks secret (whsec_ + base64).
DEMO_WEBHOOK_SECRET = "whsec_YXJjaGl2ZXIgc2ltdWxhdG9yIGRlbW8gc2VjcmV0ISE="
# The client secret the token call accepts unless one is given: long enough for archiver,
# which refuses a CXONE_CLIENT_SECRET shorter than 8 characters.
DEMO_CLIENT_SECRET = "demo-secret"

# What the API's calls are called in faults, counters and the request log.
CALL_KINDS: tuple[str, ...] = ("token", "list", "archive", "campaign")

# How a malformed record is broken; each one is a defect a strict reader must catch.
# The kinds a data set draws from unless ``malformed_kinds`` says otherwise.
MALFORMED_KINDS: tuple[str, ...] = (
    "missing_contact_id",
    "empty_contact_id",
    "null_outcome",
    "string_duration",
    "negative_duration",
    "missing_anonymized",
    "string_anonymized",
    "string_retention",
)
# Kinds drawn only when ``malformed_kinds`` names them: records without a usable id
# (``empty_record`` is served as ``{}``, so every one of them has the same content).
NO_ID_KINDS: tuple[str, ...] = ("missing_id", "null_id", "empty_id", "empty_record")

# Retention periods an attempt may carry itself (``retentionDays``).
RETENTION_CHOICES: tuple[int, ...] = (30, 90, 180, 365, 730, 1095, 2555)


@dataclass
class SimConfig:
    """The seeded data set: campaigns, their attempts, and the credentials accepted."""

    seed: int = 1
    # Explicit campaign ids win; otherwise ``campaigns`` ids are derived from the seed.
    campaign_ids: list[str] = field(default_factory=list)
    campaigns: int = 3
    attempts_per_campaign: int = 2000
    outcome_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_OUTCOME_MIX))
    unanonymized_rate: float = 1 / 300
    malformed_rate: float = 0.002
    # The kinds malformed records are drawn from, in turn (MALFORMED_KINDS, NO_ID_KINDS).
    malformed_kinds: list[str] = field(default_factory=lambda: list(MALFORMED_KINDS))
    # Share of attempts that carry a ``retentionDays`` key, and share of those where it is null.
    retention_rate: float = 0.2
    retention_null_share: float = 0.25
    client_id: str = "demo"
    client_secret: str = DEMO_CLIENT_SECRET
    webhook_secret: str = DEMO_WEBHOOK_SECRET
    # Standard Webhooks asks receivers to refuse stale timestamps; None turns the check off.
    webhook_tolerance_seconds: float | None = 300.0
    request_log_size: int = 10_000

    def __post_init__(self) -> None:
        if self.attempts_per_campaign < 0:
            raise ValueError("attempts_per_campaign must be >= 0")
        if len(set(self.campaign_ids)) != len(self.campaign_ids):
            raise ValueError("campaign_ids contains duplicates")
        if not self.campaign_ids and self.campaigns < 1:
            raise ValueError("need at least one campaign")
        if not self.outcome_mix or any(w < 0 for w in self.outcome_mix.values()):
            raise ValueError("outcome_mix needs at least one non-negative weight")
        for name in ("unanonymized_rate", "malformed_rate", "retention_rate", "retention_null_share"):
            _check_rate(name, getattr(self, name))
        known = (*MALFORMED_KINDS, *NO_ID_KINDS)
        if not self.malformed_kinds or any(k not in known for k in self.malformed_kinds):
            raise ValueError(
                f"malformed_kinds needs at least one of {', '.join(known)};"
                f" got {self.malformed_kinds!r}"
            )
        try:
            secret_key(self.webhook_secret)
        except ValueError as err:
            raise ValueError(
                "webhook_secret must be a Standard Webhooks secret (whsec_ followed by base64)"
            ) from err


@dataclass
class Faults:
    """Switchable misbehaviour; every field's default is a well-behaved server."""

    rate_limit_rps: float | None = None  # global token bucket; None or 0 means unlimited
    retry_after: bool = True  # send `Retry-After` with 429 answers
    error_5xx_rate: float = 0.0  # share of API calls answered 500, 502 or 503
    token_lifetime_seconds: float = 3600.0
    latency_ms: float = 0.0  # added to every API answer
    hang_rate: float = 0.0  # share of API calls whose answer is held back ...
    hang_seconds: float = 60.0  # ... this long (after the call took effect)
    active_campaigns: list[str] = field(default_factory=list)  # dialing: 409 until paused
    partial_failure_rate: float = 0.0  # per archive item: counted failed, stays listed
    fail_status: dict[str, int] = field(default_factory=dict)  # campaign id -> forced status
    # Call kind (token, list, archive, campaign) -> how many of its next calls are answered
    # 429, as a rate limit would (with Retry-After: 1 when ``retry_after``); counted from
    # when the faults are set.
    throttle_next: dict[str, int] = field(default_factory=dict)
    # Call kind -> how many of its next successful calls take effect and are then
    # answered 200 with a body that is not JSON (a proxy's error page, a cut answer).
    garble_next: dict[str, int] = field(default_factory=dict)
    webhook_status: int | None = None  # answered by the webhook receiver instead of 204
    # False: no Idempotency-Key is kept (the contract promises none), so an archive call
    # sent twice archives twice, as such a server would.
    idempotency_keys: bool = True

    def __post_init__(self) -> None:
        for name in ("error_5xx_rate", "hang_rate", "partial_failure_rate"):
            _check_rate(name, getattr(self, name))
        if self.rate_limit_rps is not None and self.rate_limit_rps < 0:
            raise ValueError("rate_limit_rps must be >= 0")
        if not self.token_lifetime_seconds > 0:
            raise ValueError("token_lifetime_seconds must be > 0")
        if self.latency_ms < 0 or self.hang_seconds < 0:
            raise ValueError("latency_ms and hang_seconds must be >= 0")
        for cid, status in self.fail_status.items():
            _check_status(f"fail_status[{cid}]", status)
        if self.webhook_status is not None:
            _check_status("webhook_status", self.webhook_status)
        for name, counts in (("throttle_next", self.throttle_next),
                             ("garble_next", self.garble_next)):
            for kind, n in counts.items():
                if (kind not in CALL_KINDS or isinstance(n, bool) or not isinstance(n, int)
                        or n < 0):
                    raise ValueError(
                        f"{name} maps a call kind ({', '.join(CALL_KINDS)}) to a count >= 0,"
                        f" got {kind!r}: {n!r}"
                    )

    @property
    def token_expires_in(self) -> int:
        """Whole seconds announced in ``expires_in`` for a token issued now."""
        return max(1, math.ceil(self.token_lifetime_seconds))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def merged(self, changes: dict[str, Any]) -> Faults:
        """A copy with ``changes`` applied; unknown keys or bad values raise ValueError."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(unknown)}")
        values = self.to_dict()
        values.update(changes)
        try:
            faults = Faults(**values)
        except (TypeError, AttributeError) as err:  # e.g. a string where a number belongs
            raise ValueError(str(err)) from err
        _check_types(faults)
        return faults


def _check_rate(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


def _check_status(name: str, status: int) -> None:
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"{name} must be an HTTP status code, got {status!r}")


def _check_types(faults: Faults) -> None:
    """JSON from ``POST /_sim/faults`` is untyped; refuse what the dataclass would misread."""
    numbers = (
        "error_5xx_rate", "token_lifetime_seconds", "latency_ms", "hang_rate",
        "hang_seconds", "partial_failure_rate",
    )
    for name in numbers:
        value = getattr(faults, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number")
    rps = faults.rate_limit_rps
    if rps is not None and (isinstance(rps, bool) or not isinstance(rps, int | float)):
        raise ValueError("rate_limit_rps must be a number or null")
    for name in ("retry_after", "idempotency_keys"):
        if not isinstance(getattr(faults, name), bool):
            raise ValueError(f"{name} must be a boolean")
    if not isinstance(faults.active_campaigns, list) or not all(
        isinstance(c, str) for c in faults.active_campaigns
    ):
        raise ValueError("active_campaigns must be a list of campaign ids")
    if not isinstance(faults.fail_status, dict):
        raise ValueError("fail_status must map campaign ids to status codes")
    if not isinstance(faults.throttle_next, dict):
        raise ValueError("throttle_next must map call kinds to counts")
    if not isinstance(faults.garble_next, dict):
        raise ValueError("garble_next must map call kinds to counts")

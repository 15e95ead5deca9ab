"""The CXone archive API's wire format, in one place.

Every JSON key the API speaks appears here and nowhere else. Inbound answers
are pydantic models with snake_case attributes and camelCase aliases, parsed
strictly (a listed record with a missing id, a null or a wrong type is
*malformed*, never coerced). Outbound archive bodies are TypedDicts built by
the functions below, so they are sent exactly as built.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from archiver.cxone.auth import BEARER_TOKEN

# Path templates of the calls we make (relative to the base URL).
TOKEN_PATH = "/oauth/token"
ATTEMPTS_PATH = "/api/v2/campaigns/{campaign_id}/attempts"
ARCHIVE_PATH = "/api/v2/campaigns/{campaign_id}/contacts/archive"
CAMPAIGN_PATH = "/api/v2/campaigns/{campaign_id}"

# The outcome codes (``outcomeCode``) the CXone outbound backend reports for an attempt:
# the codes a policy's outcome filter and retention rules may name. A tenant with codes
# of its own lists them in the policy under ``source.extra_outcomes``.
KNOWN_OUTCOMES: tuple[str, ...] = (
    "SURVEY_TAKEN",
    "NO_ANSWER",
    "BUSY",
    "DISCONNECTED",
    "ANSWERING_MACHINE",
    "CALLBACK_REQUESTED",
    "DO_NOT_CALL",
)

IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRY_AFTER_HEADER = "Retry-After"
COMPLETED = "completed"


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")


class Attempt(_Wire):
    """A completed contact attempt as listed by ``GET .../attempts``."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore", strict=True)

    id: str = Field(alias="id", min_length=1)
    contact_id: str = Field(alias="contactId", min_length=1)
    outcome_code: str = Field(alias="outcomeCode", min_length=1)
    disposition: str = Field(alias="disposition")
    duration: int = Field(alias="duration", ge=0)
    anonymized: bool = Field(alias="anonymized")
    retention_days: int | None = Field(default=None, alias="retentionDays")


class Malformed(BaseModel):
    """A listed record that cannot be parsed; it is quarantined with this reason."""

    model_config = ConfigDict(frozen=True)

    attempt_id: str
    field: str
    reason: str


def attempt_id_of(raw: object) -> str:
    """Best-effort id of a raw record, for quarantining records that do not parse."""
    if isinstance(raw, dict):
        value = raw.get("id")
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return ""


def parse_attempt(raw: object) -> Attempt | Malformed:
    """Parse one listed record; never raises for bad data."""
    if not isinstance(raw, dict):
        return Malformed(attempt_id="", field="(record)", reason="record is not a JSON object")
    try:
        return Attempt.model_validate(raw)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "(record)"
        if first["type"] == "missing":
            reason = f"field `{field}` is missing"
        elif raw.get(field) is None and field in raw:
            reason = f"field `{field}` is null"
        else:
            reason = f"field `{field}`: {first['msg']}"
        return Malformed(attempt_id=attempt_id_of(raw), field=field, reason=reason)


class StatusMatrix(TypedDict):
    outcomeCode: str
    disposition: str
    callDurationSeconds: int
    anonymized: bool


class ArchiveItem(TypedDict):
    contactId: str
    attemptId: str
    statusMatrix: StatusMatrix
    retentionPeriodDays: int
    deleteActive: bool


class ArchiveRequest(TypedDict):
    """The body of ``POST .../contacts/archive``, exactly as it is sent."""

    campaignId: str
    items: list[ArchiveItem]
    forceColdStorage: bool


MAX_ARCHIVE_ITEMS = 200


def archive_item(
    *,
    contact_id: str,
    attempt_id: str,
    outcome_code: str,
    disposition: str,
    call_duration_seconds: int,
    anonymized: bool,
    retention_period_days: int,
    delete_active: bool,
) -> ArchiveItem:
    """One item of an archive body."""
    return {
        "contactId": contact_id,
        "attemptId": attempt_id,
        "statusMatrix": {
            "outcomeCode": outcome_code,
            "disposition": disposition,
            "callDurationSeconds": call_duration_seconds,
            "anonymized": anonymized,
        },
        "retentionPeriodDays": retention_period_days,
        "deleteActive": delete_active,
    }


def archive_request(
    *, campaign_id: str, items: list[ArchiveItem], force_cold_storage: bool
) -> ArchiveRequest:
    """An archive body; ValueError past the API's limit of items per call.

    Built as plain JSON values rather than validated models: the values come from
    the state store, already checked, and a run builds one body per batch.
    """
    if len(items) > MAX_ARCHIVE_ITEMS:
        msg = f"an archive call takes at most {MAX_ARCHIVE_ITEMS} items, not {len(items)}"
        raise ValueError(msg)
    return {"campaignId": campaign_id, "items": items, "forceColdStorage": force_cold_storage}


class ArchiveResponse(_Wire):
    archived_count: int = Field(alias="archivedCount")
    failed_count: int = Field(alias="failedCount")
    migration_job_id: str | None = Field(default=None, alias="migrationJobId")
    status: str = Field(default="", alias="status")
    timestamp: str | None = Field(default=None, alias="timestamp")


class TokenResponse(_Wire):
    access_token: str = Field(alias="access_token", pattern=BEARER_TOKEN)
    # A lifetime that is not a positive, finite number of seconds (NaN, Infinity, 0, -1)
    # would make the token cache refresh never or always: a protocol error, not a guess.
    # A JSON number only: "3600" as a string, or true, is not one (RFC 6749 5.1).
    expires_in: float = Field(alias="expires_in", gt=0, allow_inf_nan=False, strict=True)


CampaignStatus = Literal["ACTIVE", "PAUSED"]


class CampaignStatusPatch(_Wire):
    status: CampaignStatus = Field(alias="status")

    def body(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


def token_form(client_id: str, client_secret: str) -> dict[str, str]:
    """Form body of the client-credentials token request."""
    return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}


def list_params(limit: int, offset: int) -> dict[str, str | int]:
    """Query parameters of the completed-attempts listing."""
    return {"status": COMPLETED, "limit": limit, "offset": offset}


# Keys under which an error answer may explain itself, most specific first
# (OAuth's error_description before its bare error code).
ERROR_TEXT_KEYS = ("error_description", "message", "detail", "error", "title")


def error_text(body: object) -> str | None:
    """The server's own explanation in a parsed error answer, if it gave one."""
    if isinstance(body, dict):
        for key in ERROR_TEXT_KEYS:
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None

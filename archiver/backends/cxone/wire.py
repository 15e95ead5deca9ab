"""NICE CXone's published API as archiver speaks it: every path, query key and JSON key.

Nothing outside this module spells a CXone key. Answers are pydantic models with
snake_case attributes and the API's camelCase aliases; they ignore keys they do not
name (the API adds fields between versions). A listed record is parsed field by
field by the backend, so one bad record is quarantined instead of failing a page.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from archiver import jsonsafe
from archiver.cxone.auth import BEARER_TOKEN

DEFAULT_AUTH_URL = "https://cxone.niceincontact.com"
DEFAULT_API_VERSION = "v34.0"

# -- auth and discovery (on the auth host) -------------------------------------------
TOKEN_PATH = "/auth/token"
DISCOVERY_PATH = "/.well-known/cxone-configuration"
DISCOVERY_TENANT = "tenantId"
GRANT_PASSWORD = "password"
GRANT_REFRESH = "refresh_token"
# The claim of an issued token (the id_token's, else the access token's) naming the
# tenant the access key belongs to.
TOKEN_TENANT_CLAIM = "tenantId"

# -- the API (on the discovered api_endpoint) ---------------------------------------
API_ROOT = "/inContactAPI/services/{version}/"
COMPLETED_CONTACTS = "contacts/completed"
DISPOSITIONS = "dispositions"
CALL_LIST_ATTEMPTS = "lists/call-lists/{list_id}/attempts"
REMOVE_PROSPECTS = "lists/call-lists/{list_id}/removeProspects"
CAMPAIGN_SKILLS = "campaigns/{campaign_id}/skills"
SKILL = "skills/{skill_id}"
SKILL_STOP = "skills/{skill_id}/stop"
SKILL_START = "skills/{skill_id}/start"

ORDER_BY_UPDATE = "lastUpdateTime asc"
# Community clients report answers of up to this many records.
MAX_TOP = 10_000
# The admin lists (dispositions) page by at most this many, as a community client
# reports; a page may still come shorter than asked for before the last one.
LIST_TOP = 100

ACCEPT = "application/json"
IC_STATUS_HEADER = "icStatusDescription"
RETRY_AFTER_HEADER = "Retry-After"

# Record keys the backend reads one by one (records are parsed leniently, per field).
CONTACT_ID = "contactId"
LAST_UPDATE_TIME = "lastUpdateTime"
CAMPAIGN_ID = "campaignId"
PRIMARY_DISPOSITION_ID = "primaryDispositionId"
TOTAL_DURATION_SECONDS = "totalDurationSeconds"
EXTERNAL_ID = "externalId"
AGENT_DISP_DESC = "agentDispDesc"
SYSTEM_CLASS_NAME = "systemClassName"


def password_form(access_key_id: str, access_key_secret: str) -> dict[str, str]:
    """The token form of the password grant: the access key as username and password."""
    return {"grant_type": GRANT_PASSWORD, "username": access_key_id, "password": access_key_secret}


def refresh_form(refresh_token: str) -> dict[str, str]:
    return {"grant_type": GRANT_REFRESH, "refresh_token": refresh_token}


def discovery_params(tenant_id: str) -> dict[str, str]:
    return {DISCOVERY_TENANT: tenant_id}


def completed_params(campaign_id: str, updated_since: str, skip: int, top: int) -> dict[str, str]:
    return {
        "campaignId": campaign_id,
        "updatedSince": updated_since,
        "orderBy": ORDER_BY_UPDATE,
        "skip": str(skip),
        "top": str(top),
    }


def page_params(skip: int, top: int) -> dict[str, str]:
    return {"skip": str(skip), "top": str(top)}


def attempts_params(skip: int, top: int) -> dict[str, str]:
    return {"finalized": "true", "skip": str(skip), "top": str(top)}


def stop_params() -> dict[str, str]:
    # Never force: a forced stop drops calls in progress.
    return {"force": "false"}


def remove_prospects_body(external_ids: list[str]) -> dict[str, Any]:
    return {"prospectsToRemove": [{EXTERNAL_ID: e} for e in external_ids]}


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")


class TokenAnswer(_Wire):
    access_token: str = Field(min_length=1, pattern=BEARER_TOKEN)
    token_type: str = "Bearer"
    refresh_token: str | None = None
    # Missing: CXone's usual hour. Infinity (Python's JSON reads it) would never renew
    # the token, NaN renew it before every call: a protocol error, as 0 or -1 is.
    expires_in: float = Field(default=3600.0, gt=0, allow_inf_nan=False)
    id_token: str | None = None


def token_tenant(answer: TokenAnswer) -> str | None:
    """The tenant a token answer's claims name (its id_token, else its access token,
    read as JWTs without checking their signature: the answer came from the token
    endpoint itself); None when neither names one."""
    for token in (answer.id_token, answer.access_token):
        claims = _jwt_claims(token) if token else None
        value = claims.get(TOKEN_TENANT_CLAIM) if isinstance(claims, Mapping) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _jwt_claims(token: str) -> object:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        return jsonsafe.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:  # not base64 (binascii.Error), not UTF-8, not JSON
        return None


class Discovery(_Wire):
    api_endpoint: str = Field(min_length=1)
    auth_endpoint: str | None = None
    tenant_id: str | None = Field(default=None, alias="tenantId")


# Listing answers name no count (totalRecords), list name or skill name: archiver reads
# none of them, and one of an unexpected type must not make a page unreadable.
class CompletedContacts(_Wire):
    last_poll_time: str | None = Field(default=None, alias="lastPollTime")
    completed_contacts: list[Any] = Field(default_factory=list, alias="completedContacts")


class Disposition(_Wire):
    disposition_id: int = Field(alias="dispositionId")
    disposition_name: str = Field(alias="dispositionName")


class Dispositions(_Wire):
    dispositions: list[Disposition] = Field(default_factory=list)
    # Of any type: only a whole number counts (total()), so an odd one never makes the
    # page unreadable.
    total_records: Any = Field(default=None, alias="totalRecords")

    def total(self) -> int | None:
        """How many dispositions the tenant says it has, when it says so plainly."""
        value = self.total_records
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class AttemptsResultSet(_Wire):
    contact_attempts: list[Any] = Field(default_factory=list, alias="contactAttempts")


class CallListAttempts(_Wire):
    result_set: AttemptsResultSet = Field(alias="resultSet")


def _id_as_text(value: object) -> object:
    # The generated client types externalId as a number; the body sends it as text.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ProspectResult(_Wire):
    external_id: Annotated[str, BeforeValidator(_id_as_text)] = Field(alias="externalId")
    result_code: str | None = Field(default=None, alias="resultCode")


class RemoveProspects(_Wire):
    successful_records: list[ProspectResult] = Field(
        default_factory=list, alias="successfulRecords"
    )
    failed_records: list[ProspectResult] = Field(default_factory=list, alias="failedRecords")


class SkillRef(_Wire):
    skill_id: int = Field(alias="skillId")


class CampaignSkills(_Wire):
    skills: list[SkillRef] = Field(default_factory=list)


class Skill(_Wire):
    skill_id: int = Field(alias="skillId")
    is_running: bool = Field(alias="isRunning")


def skill_of(body: object) -> object:
    """A skill's object: answered bare by v34.0, inside ``skills[]`` by older versions."""
    if isinstance(body, Mapping) and isinstance(body.get("skills"), list) and body["skills"]:
        return body["skills"][0]
    return body


def error_text(body: object, headers: Mapping[str, str]) -> str:
    """The server's explanation from any of the three error shapes, or the
    ``icStatusDescription`` header; "" when there is none."""
    parts: list[str] = []
    if isinstance(body, Mapping):
        # ACD: {"error", "error_description"}
        if body.get("error") or body.get("error_description"):
            parts.append(": ".join(str(body[k]) for k in ("error", "error_description") if body.get(k)))
        # Platform (Data Policies, Privacy): {"code", "details", "errors"}
        elif body.get("code") or body.get("details"):
            parts.append(": ".join(str(body[k]) for k in ("code", "details") if body.get(k)))
            errors = body.get("errors")
            if isinstance(errors, list) and errors:
                parts.append("; ".join(_short(e) for e in errors[:3]))
        # Platform 401: {"message"}
        elif body.get("message"):
            parts.append(str(body["message"]))
    status = headers.get(IC_STATUS_HEADER)
    if status and not any(status in part for part in parts):
        parts.append(status)
    return " - ".join(parts)


def _short(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))

"""What each backend provides, known without loading it: policy validation asks here.

A backend's listings provide some record fields and not others; a policy whose
stages read a field its backend lacks is refused by ``archiver validate``. The
backends' own modules take their field sets from here, so the two never drift.
"""

from __future__ import annotations

from archiver.engine.backend import RecordField

CAMPAIGN_ARCHIVE = "campaign-archive"
CXONE = "cxone"
APIS: tuple[str, ...] = (CAMPAIGN_ARCHIVE, CXONE)

COMPLETED_CONTACTS = "completed_contacts"
CALL_LIST_ATTEMPTS = "call_list_attempts"
SOURCE_TYPES: tuple[str, ...] = (COMPLETED_CONTACTS, CALL_LIST_ATTEMPTS)

CAMPAIGN_ARCHIVE_FIELDS: frozenset[RecordField] = frozenset(
    {"outcome", "disposition", "duration", "anonymized", "retention_days", "contact_id"}
)
# completed_contacts: a contact's disposition name is its outcome; no anonymized flag, no
# retention of its own. call_list_attempts: the agent's or the system's disposition.
CXONE_CONTACT_FIELDS: frozenset[RecordField] = frozenset(
    {"outcome", "duration", "updated_at", "contact_id"}
)
CXONE_ATTEMPT_FIELDS: frozenset[RecordField] = frozenset({"outcome", "disposition", "contact_id"})


def fields_of(api: str, source_type: str | None) -> frozenset[RecordField]:
    """The record fields listings of ``api`` (with ``source.type``) provide."""
    if api == CXONE:
        return CXONE_ATTEMPT_FIELDS if source_type == CALL_LIST_ATTEMPTS else CXONE_CONTACT_FIELDS
    return CAMPAIGN_ARCHIVE_FIELDS


def known_outcomes(api: str) -> tuple[str, ...] | None:
    """The outcome codes ``api`` reports, when they are known before listing; None when
    they are the tenant's own (CXone: disposition names, configured per tenant)."""
    if api == CXONE:
        return None
    # Imported here: the client package imports the policy models, which ask here.
    from archiver.cxone.wire import KNOWN_OUTCOMES

    return KNOWN_OUTCOMES

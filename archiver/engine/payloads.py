"""What the engine sends, built from plain values: archive bodies and sink event contexts.

Pure functions with no store, client or run behind them, so ``plan`` and ``test``
render exactly the payloads a run would send for the same attempts.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from archiver import __version__
from archiver.cxone import wire
from archiver.engine.records import FINAL_STATES
from archiver.governance.provenance import policy_provenance
from archiver.policy.model import Policy
from archiver.target import target_for


class ArchiveLine(Protocol):
    """One attempt bound for an archive call (the state store's PendingItem is one)."""

    @property
    def attempt_id(self) -> str: ...
    @property
    def contact_id(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def disposition(self) -> str: ...
    @property
    def duration(self) -> int: ...
    @property
    def retention_days(self) -> int: ...
    @property
    def anonymized(self) -> bool: ...


class BatchRef(Protocol):
    """What an event says about the batch itself (the state store's StoredBatch is one)."""

    @property
    def id(self) -> str: ...
    @property
    def campaign_id(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def idempotency_key(self) -> str: ...
    @property
    def size(self) -> int: ...


def archive_request(
    policy: Policy, campaign_id: str, lines: Iterable[ArchiveLine]
) -> wire.ArchiveRequest:
    """The body of ``POST .../contacts/archive`` for ``lines``: every field of every item
    is the record's own value, as listed (``anonymized`` included: never a constant)."""
    delete_active = policy.batch.delete_active
    return wire.archive_request(
        campaign_id=campaign_id,
        force_cold_storage=policy.batch.force_cold_storage,
        items=[
            wire.archive_item(
                contact_id=line.contact_id,
                attempt_id=line.attempt_id,
                outcome_code=line.outcome,
                disposition=line.disposition,
                call_duration_seconds=line.duration,
                anonymized=line.anonymized,
                retention_period_days=line.retention_days,
                delete_active=delete_active,
            )
            for line in lines
        ],
    )


def batch_event(
    *,
    run_id: str,
    policy: Policy,
    batch: BatchRef,
    lines: Sequence[ArchiveLine],
    response: wire.ArchiveResponse | None,
    timestamp: str,
    target: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The template context of a ``batch_archived`` event (see archiver.templates.context).

    ``target``: what the run talks to (``Target.as_dict``); without one, the policy's own
    ``connection.base_url`` (previews that connect to nothing).
    """
    return {
        "event": "batch_archived",
        "event_id": batch_event_id(batch.id, lines),
        "run_id": run_id,
        "policy": policy_ref(policy),
        "archiver_version": __version__,
        "target": _target(policy, target),
        "campaign_id": batch.campaign_id,
        "batch": {
            "id": batch.id,
            "seq": batch.seq,
            "idempotency_key": batch.idempotency_key,
            "size": batch.size,
            "archived_count": len(lines),
            "failed_count": batch.size - len(lines),
            "migration_job_id": response.migration_job_id if response else None,
            "status": response.status if response else "RECONCILED_FROM_LISTING",
            "attempt_ids": [line.attempt_id for line in lines],
            "retention_days": {
                str(k): v for k, v in sorted(Counter(line.retention_days for line in lines).items())
            },
            "outcomes": dict(sorted(Counter(line.outcome for line in lines).items())),
        },
        "timestamp": timestamp,
    }


def batch_event_id(batch_id: str, lines: Iterable[ArchiveLine]) -> str:
    """The id of a batch's event: its batch and the attempts it archived, nothing of a run
    or a store. Two stores that archived the same batch name its event alike, so the
    warehouse keeps one; a batch tried again after archiving none gets an id of its own."""
    archived = "\n".join(sorted(line.attempt_id for line in lines))
    return f"evt-{batch_id}-{hashlib.sha256(archived.encode()).hexdigest()[:8]}"


def run_event(
    *,
    run_id: str,
    policy: Policy,
    kind: str,
    counts: Mapping[str, int],
    timestamp: str,
    target: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The template context of a ``run_started`` or ``run_finished`` event."""
    return {
        "event": kind,
        "event_id": f"evt-{run_id}-{kind}",
        "run_id": run_id,
        "policy": policy_ref(policy),
        "archiver_version": __version__,
        "target": _target(policy, target),
        "timestamp": timestamp,
        "counts": {"listed": sum(counts.values()), **{s: counts.get(s, 0) for s in FINAL_STATES}},
        "campaigns": [c.id for c in policy.campaigns],
    }


def policy_ref(policy: Policy) -> dict[str, Any]:
    """What events say of the policy: its name, SHA-256, git commit and whether the file
    differs from that commit (None outside git)."""
    commit, dirty = _git_state(policy.path, policy.sha256)
    return {"name": policy.name, "sha256": policy.sha256, "git_commit": commit,
            "git_dirty": dirty}


@lru_cache(maxsize=64)
def _git_state(path: Path | None, sha256: str) -> tuple[str | None, bool | None]:
    # Once per policy text: git is asked when the first event of a run is built.
    found = policy_provenance(path, sha256)
    return found["git_commit"], found["git_dirty"]


def _target(policy: Policy, target: Mapping[str, Any] | None) -> dict[str, Any]:
    if target is not None:
        return dict(target)
    return target_for(policy.connection.base_url).as_dict()

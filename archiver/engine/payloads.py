"""What the engine tells its sinks, built from plain values: the event contexts.

Pure functions with no store, backend or run behind them, so ``plan`` and ``test``
render exactly the payloads a run would send for the same attempts. (The body of an
API call is the backend's business: see ``archiver.backends``.)
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from archiver import __version__
from archiver.engine.records import FINAL_STATES
from archiver.governance.provenance import policy_provenance
from archiver.policy.model import Policy
from archiver.target import target_for


class ArchiveLine(Protocol):
    """One attempt of a batch, as its event counts it (the state store's PendingItem is one)."""

    @property
    def attempt_id(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def retention_days(self) -> int: ...


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


def batch_event(
    *,
    run_id: str,
    policy: Policy,
    batch: BatchRef,
    lines: Sequence[ArchiveLine],
    status: str | None,
    job_id: str | None,
    timestamp: str,
    target: Mapping[str, Any] | None = None,
    files: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The template context of a ``batch_archived`` event (see archiver.templates.context).

    ``status`` and ``job_id`` are the backend's words for what it did (None: the answer
    was lost and the listing showed what was archived). ``files``: what the ``file``
    sinks wrote for the batch. ``target``: what the run talks to (``Target.as_dict``);
    without one, the policy's own connection (previews that connect to nothing).
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
            "migration_job_id": job_id,
            "status": status if status is not None else RECONCILED,
            "attempt_ids": [line.attempt_id for line in lines],
            "retention_days": {
                str(k): v for k, v in sorted(Counter(line.retention_days for line in lines).items())
            },
            "outcomes": dict(sorted(Counter(line.outcome for line in lines).items())),
        },
        "files": [dict(f) for f in files],
        "timestamp": timestamp,
    }


# A batch's status when its answer was lost and the listing showed what it archived.
RECONCILED = "RECONCILED_FROM_LISTING"


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
    result: Mapping[str, Any] | None = None,
    reconciled: int = 0,
) -> dict[str, Any]:
    """The template context of a ``run_started`` or ``run_finished`` event; ``result``
    (how the run ended: status and exit code) is None at ``run_started``. ``counts``:
    the run's listed attempts by state; ``reconciled``: attempts an earlier run's open
    batch archived, found gone from the listing (not listed, so not in ``listed``)."""
    return {
        "event": kind,
        "event_id": f"evt-{run_id}-{kind}",
        "run_id": run_id,
        "policy": policy_ref(policy),
        "archiver_version": __version__,
        "target": _target(policy, target),
        "timestamp": timestamp,
        "counts": {
            "listed": sum(counts.values()), **{s: counts.get(s, 0) for s in FINAL_STATES},
            "reconciled": reconciled,
        },
        "campaigns": [c.id for c in policy.campaigns],
        "result": dict(result) if result is not None else None,
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
    connection = policy.connection
    url = connection.base_url or connection.auth_url
    return target_for(url, backend=connection.api, tenant=connection.tenant_id).as_dict()

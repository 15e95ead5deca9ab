"""What a payload template sees: the exact context the engine renders webhook and audit
templates with.

Every template is rendered with one of three events. All values are plain JSON types.

``batch_archived`` (one per archive batch)::

    {
      "event": "batch_archived",
      "event_id": str,              # stable across retries and re-runs
      "run_id": str,
      "policy": {                   # which reviewed policy ran
        "name": str,
        "sha256": str,              # of the policy file's bytes
        "git_commit": str | None,   # HEAD of the git work tree holding it (None outside git)
        "git_dirty": bool | None    # the file differs from that commit (or is not in it)
      },
      "archiver_version": str,
      "target": {                   # what the run talks to
        "backend": str,             # the API: "campaign-archive" or "cxone"
        "host": str,                # host[:port] of the base URL used, or "embedded" for
                                    # the built-in simulator (nothing real changed)
        "tenant": str | None        # cxone: connection.tenant_id; null for campaign-archive
      },
      "campaign_id": str,
      "batch": {
        "id": str,
        "seq": int,                 # 1-based position of the batch within its campaign
        "idempotency_key": str,
        "size": int,                # attempts submitted in this batch
        "archived_count": int,      # attempts of the batch recorded archived
        "failed_count": int,        # attempts of the batch not archived (still listed after it)
        "migration_job_id": str | None,   # the backend's job id (campaign-archive), else null
        "status": str,              # the backend's word for what it did (campaign-archive: the
                                    # job status; cxone: exported, retired, partially_retired),
                                    # or RECONCILED_FROM_LISTING when the answer was lost and
                                    # the listing showed what was archived
        "attempt_ids": [str],       # the attempts recorded archived
        "retention_days": {"365": 12, ...},   # days (as a string key) -> attempts
        "outcomes": {"NO_ANSWER": 3, ...}     # outcome code -> attempts
      },
      "files": [                    # one per `file` sink: the batch's archive on disk
        {"path": str,               # relative to the policy's folder
         "sha256": str,             # of the file's bytes (gzip), as on disk
         "records": int}            # lines in it: the attempts recorded archived
      ],                            # [] without a file sink
      "timestamp": str              # ISO-8601, UTC
    }

``run_started`` and ``run_finished`` (one each per run)::

    {
      "event": "run_started" | "run_finished",
      "event_id": str,
      "run_id": str,
      "policy": {"name": str, "sha256": str, "git_commit": str | None,
                 "git_dirty": bool | None},
      "archiver_version": str,
      "target": {"backend": str, "host": str, "tenant": str | None},
      "timestamp": str,
      "counts": {"listed": int, "archived": int, "skipped": int,
                 "quarantined": int, "failed": int, "held": int,  # zero at run_started
                 "reconciled": int},  # attempts of an earlier run's batch that died
                                      # before recording its answer, found gone from
                                      # the listing: archived by that run's request,
                                      # not listed by this run (not in `listed`)
      "campaigns": [str],
      "result": None                # at run_started; at run_finished, how the run ended:
                {"status": "completed" | "failed" | "stopped" | "interrupted",
                 "exit_code": int}  # the exit code `archiver run` gives for this policy
    }

A template must render to one JSON document; use ``{% if event == "batch_archived" %}``
to shape each kind. ``{{ value | tojson }}`` writes any value as JSON. Audit templates
must not emit ``event_id``, ``seq``, ``prev_hash`` or ``hash``: the audit log adds those
itself to chain the lines together.
"""

from __future__ import annotations

from typing import Literal, TypedDict

EventKind = Literal["batch_archived", "run_started", "run_finished"]


class PolicyRef(TypedDict):
    name: str
    sha256: str
    git_commit: str | None
    git_dirty: bool | None


class TargetRef(TypedDict):
    backend: str
    host: str
    tenant: str | None


class BatchInfo(TypedDict):
    id: str
    seq: int
    idempotency_key: str
    size: int
    archived_count: int
    failed_count: int
    migration_job_id: str | None
    status: str
    attempt_ids: list[str]
    retention_days: dict[str, int]
    outcomes: dict[str, int]


class FileInfo(TypedDict):
    path: str
    sha256: str
    records: int


class BatchEvent(TypedDict):
    event: Literal["batch_archived"]
    event_id: str
    run_id: str
    policy: PolicyRef
    archiver_version: str
    target: TargetRef
    campaign_id: str
    batch: BatchInfo
    files: list[FileInfo]
    timestamp: str


class RunCounts(TypedDict):
    listed: int
    archived: int
    skipped: int
    quarantined: int
    failed: int
    held: int
    reconciled: int


class RunResult(TypedDict):
    status: Literal["completed", "failed", "stopped", "interrupted"]
    exit_code: int


class RunEvent(TypedDict):
    event: Literal["run_started", "run_finished"]
    event_id: str
    run_id: str
    policy: PolicyRef
    archiver_version: str
    target: TargetRef
    timestamp: str
    counts: RunCounts
    campaigns: list[str]
    result: RunResult | None


EventContext = BatchEvent | RunEvent


def sample_events() -> list[EventContext]:
    """One made-up event of each kind, for checking that a template renders before a run."""
    policy: PolicyRef = {
        "name": "sample-policy", "sha256": "0" * 64, "git_commit": "1" * 40, "git_dirty": False,
    }
    version = "0.0.0"
    target: TargetRef = {"backend": "campaign-archive", "host": "api.example.com", "tenant": None}
    started: RunEvent = {
        "event": "run_started",
        "event_id": "evt-sample-run-started",
        "run_id": "run-sample",
        "policy": policy,
        "archiver_version": version,
        "target": target,
        "timestamp": "2024-01-01T00:00:00Z",
        "counts": {"listed": 0, "archived": 0, "skipped": 0, "quarantined": 0, "failed": 0,
                   "held": 0, "reconciled": 0},
        "campaigns": ["1001"],
        "result": None,
    }
    batch: BatchEvent = {
        "event": "batch_archived",
        "event_id": "evt-sample-batch",
        "run_id": "run-sample",
        "policy": policy,
        "archiver_version": version,
        "target": target,
        "campaign_id": "1001",
        "batch": {
            "id": "batch-sample",
            "seq": 1,
            "idempotency_key": "idem-sample",
            "size": 3,
            "archived_count": 2,
            "failed_count": 1,
            "migration_job_id": "job-sample",
            "status": "Completed",
            "attempt_ids": ["a-1", "a-2", "a-3"],
            "retention_days": {"365": 2, "30": 1},
            "outcomes": {"NO_ANSWER": 2, "ANSWERED": 1},
        },
        "files": [{"path": "archive/1001/2024-01-01/batch-sample.jsonl.gz",
                   "sha256": "0" * 64, "records": 2}],
        "timestamp": "2024-01-01T00:00:05Z",
    }
    finished: RunEvent = {
        **started,
        "event": "run_finished",
        "event_id": "evt-sample-run-finished",
        "timestamp": "2024-01-01T00:00:09Z",
        "counts": {"listed": 4, "archived": 2, "skipped": 1, "quarantined": 0, "failed": 1,
                   "held": 0, "reconciled": 0},
        "result": {"status": "failed", "exit_code": 1},
    }
    return [started, batch, finished]

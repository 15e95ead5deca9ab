"""Helpers for end-to-end runs against the simulator's cxone personality: policies, the
environment with its credentials, and what the archive files on disk hold."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from archiver.simulator.cxone import CxoneSimulator
from tests.support import write_policy

# The simulator's dispositions, by the names a cxone policy approves.
APPROVED = ["Survey Taken", "No Answer", "Busy", "Disconnected", "Callback Requested",
            "Answering Machine", "Do Not Call", "Answered", "(none)"]


def cxone_policy(
    tmp_path: Path,
    sim: CxoneSimulator,
    campaigns: list[str],
    *,
    action: str = "export",
    source: dict[str, Any] | None = None,
    approved: list[str] | None = None,
    **connection: Any,
) -> Path:
    doc: dict[str, Any] = {
        "version": 1,
        "name": "cxone-test",
        "connection": {
            "api": "cxone",
            "tenant_id": sim.config.tenant_id,
            "auth_url": sim.base_url,
            "timeout_seconds": 5,
            "max_requests_per_second": 200,
            "max_in_flight": 3,
            **connection,
        },
        "campaigns": [
            {"id": c, "action": action, "on_active": "pause_and_resume"} for c in campaigns
        ],
        "source": source or {"type": "completed_contacts", "page_size": 40},
        "filters": [{"type": "outcome", "approved": approved or APPROVED}],
        "transforms": [{"type": "retention", "default_days": 365,
                        "rules": [{"outcome": "Survey Taken", "days": 730}]}],
        "batch": {"max_items": 25},
        "retry": {"max_attempts": 8, "initial_backoff_seconds": 0.02,
                  "max_backoff_seconds": 0.3},
        "sinks": [
            {"type": "file", "path": "archive/{campaign}/{date}/"},
            {"type": "audit_log", "path": "audit/audit.jsonl"},
        ],
    }
    return write_policy(tmp_path / "policy.yaml", doc)


def cxone_env(sim: CxoneSimulator, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    c = sim.config
    env.update(
        CXONE_ACCESS_KEY_ID=c.access_key_id,
        CXONE_ACCESS_KEY_SECRET=c.access_key_secret,
        CXONE_CLIENT_ID=c.client_id,
        CXONE_CLIENT_SECRET=c.client_secret,
    )
    env.update(extra)
    return env


def archive_files(folder: Path) -> dict[Path, list[dict[str, Any]]]:
    """Every archive file under ``folder`` with its lines."""
    return {
        path: [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
        for path in sorted(folder.rglob("*.jsonl.gz"))
    }


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def audit_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]

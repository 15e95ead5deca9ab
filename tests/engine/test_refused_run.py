"""Credentials the API refuses during a run: the command exits 78, and the run's own
records say so too. They used to say 1 (the report, ``runs``, the signed run_finished
line and the metrics) while the process exited 78."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

from archiver.engine.backend import AttemptRecord
from archiver.engine.runner import run_policy
from archiver.errors import EXIT_CONFIG, AuthError
from archiver.policy import load_policy
from archiver.state.store import Store
from archiver.target import Target
from tests.engine.fakes import RecordingBackend
from tests.support import REPO, policy_dict, write_policy


class KeepingSink:
    name = "keeping"
    events = frozenset({"run_started", "batch_archived", "run_finished"})

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def render(self, event: Mapping[str, Any]) -> str:
        return json.dumps(event, default=str)

    def deliver(self, event_id: str, body: str) -> str | None:
        self.bodies.append(json.loads(body))
        return None


def run(tmp_path: Path, refusal: AuthError | None) -> tuple[Any, KeepingSink]:
    listing = {"camp-a": [AttemptRecord(id=f"a-{n}", contact_id=f"c-{n}", outcome="SURVEY_TAKEN",
                                        anonymized=True, retention_days=30) for n in range(3)]}
    policy = load_policy(write_policy(tmp_path / "policy.yaml", policy_dict(["camp-a"])))
    sink = KeepingSink()
    result = run_policy(policy, backend=RecordingBackend(listing, page_size=3), sinks=[sink],
                        state_dir=tmp_path / "state", target=Target("campaign-archive", "embedded"),
                        refused=lambda: refusal)
    return result, sink


def test_a_run_whose_credentials_were_refused_records_exit_78(tmp_path: Path) -> None:
    result, sink = run(tmp_path, AuthError("credentials refused by host: HTTP 401"))
    assert result.exit_code == EXIT_CONFIG
    assert result.report["exit_code"] == EXIT_CONFIG
    # The published report schema allows the exit code the run records.
    schema = json.loads((REPO / "schemas" / "run-report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema["properties"]["exit_code"]).validate(EXIT_CONFIG)
    [finished] = [b for b in sink.bodies if b.get("event") == "run_finished"]
    assert finished["result"] == {"status": "failed", "exit_code": EXIT_CONFIG}
    store = Store(tmp_path / "state")
    try:
        [(status, code)] = store.query("SELECT status, exit_code FROM runs")
    finally:
        store.close()
    assert (status, code) == ("failed", EXIT_CONFIG)


def test_a_run_without_a_refusal_keeps_its_exit_code(tmp_path: Path) -> None:
    result, _ = run(tmp_path, None)
    assert result.exit_code == 0 and result.report["exit_code"] == 0

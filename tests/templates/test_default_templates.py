from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from archiver.audit import AuditLog, verify_file
from archiver.errors import TemplateError
from archiver.templates import (
    DEFAULT_AUDIT,
    DEFAULT_WEBHOOK,
    EventContext,
    load_template,
    sample_events,
)
from archiver.templates.compiled import DEFAULTS_DIR

EVENTS: dict[str, Any] = {e["event"]: e for e in sample_events()}


def keys(value: Any) -> set[str]:
    """Every key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value).union(*(keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys(v) for v in value))
    return set()


def test_defaults_ship_inside_the_package() -> None:
    assert (DEFAULTS_DIR / DEFAULT_AUDIT).is_file()
    assert (DEFAULTS_DIR / DEFAULT_WEBHOOK).is_file()
    assert DEFAULTS_DIR.parent == Path(__import__("archiver.templates").templates.__file__).parent


@pytest.mark.parametrize("default", [DEFAULT_AUDIT, DEFAULT_WEBHOOK])
@pytest.mark.parametrize("kind", ["run_started", "batch_archived", "run_finished"])
def test_defaults_render_a_json_object_for_every_event(default: str, kind: str) -> None:
    body = load_template(None, default).render_json(EVENTS[kind])
    assert isinstance(body, dict)
    assert body["run_id"] == "run-sample"
    assert kind in body.values()


def test_webhook_carries_the_warehouse_fields() -> None:
    event = EVENTS["batch_archived"]
    body = load_template(None, DEFAULT_WEBHOOK).render_json(event)
    assert body["type"] == "batch_archived"
    assert body["event_id"] == event["event_id"]
    assert body["campaign_id"] == "1001"
    assert body["migration_job_id"] == "job-sample"
    assert body["counts"] == {"submitted": 3, "archived": 2, "failed": 1}
    assert body["occurred_at"] == event["timestamp"]
    finished = load_template(None, DEFAULT_WEBHOOK).render_json(EVENTS["run_finished"])
    assert finished["counts"] == EVENTS["run_finished"]["counts"]
    assert finished["campaigns"] == ["1001"]


def test_webhook_renders_a_missing_migration_job_as_null() -> None:
    event: Any = {**EVENTS["batch_archived"]}
    event["batch"] = {**event["batch"], "migration_job_id": None}
    assert load_template(None, DEFAULT_WEBHOOK).render_json(event)["migration_job_id"] is None


def test_audit_record_states_the_recorded_result_and_claims_nothing_else() -> None:
    event = EVENTS["batch_archived"]
    body = load_template(None, DEFAULT_AUDIT).render_json(event)
    assert body["result"] == {"status": "Completed", "archived_count": 2, "failed_count": 1}
    assert body["attempt_ids"] == ["a-1", "a-2", "a-3"]
    assert body["retention_days"] == {"365": 2, "30": 1}
    assert body["outcomes"] == {"NO_ANSWER": 2, "ANSWERED": 1}
    every = " ".join(keys(body)).lower()
    assert "verif" not in every and "complian" not in every


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: e["event"])
def test_audit_records_chain_into_the_audit_log(tmp_path: Path, event: EventContext) -> None:
    record = load_template(None, DEFAULT_AUDIT).render_json(event)
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append(record, event_id=event["event_id"])
    log.append(record, event_id=event["event_id"] + "-again")
    assert verify_file(tmp_path / "audit.jsonl").ok


@pytest.mark.parametrize("default", [DEFAULT_AUDIT, DEFAULT_WEBHOOK])
def test_defaults_refuse_an_unknown_event(default: str) -> None:
    event: Any = {**EVENTS["run_started"], "event": "something_else"}
    with pytest.raises(TemplateError, match="undefined"):
        load_template(None, default).render_json(event)

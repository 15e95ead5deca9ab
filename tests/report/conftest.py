"""Shared helpers of the report tests: the report schema and the counts check."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from tests.support import REPO

STATES = ("archived", "skipped", "quarantined", "failed")


@pytest.fixture(scope="session")
def report_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((REPO / "schemas" / "run-report.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def check_report(report: dict[str, Any], schema: dict[str, Any]) -> None:
    """Valid against the schema, and every count adds up to what was listed."""
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    validator.validate(report)
    totals = report["totals"]
    assert totals["listed"] == sum(totals[s] for s in STATES)
    for campaign in report["campaigns"]:
        assert campaign["listed"] == sum(campaign[s] for s in STATES), campaign["id"]
    for state in (*STATES, "listed"):
        assert totals[state] == sum(c[state] for c in report["campaigns"]), state

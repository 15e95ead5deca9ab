"""Every audit line and webhook event names the policy's SHA-256, its git commit and
whether the file differs from it, the target, and the archiver version (PRODUCT.md,
Governance). The default templates always did; the templates shipped beside the
policies in policies/ and examples/ left out the target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from archiver.templates import DEFAULT_AUDIT, DEFAULT_WEBHOOK, load_template, sample_events

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted([*REPO.glob("policies/templates/*.j2"), *REPO.glob("examples/templates/*.j2")])
EVENTS = sample_events()


def values(value: Any) -> list[Any]:
    """Every value anywhere in a JSON value, containers included."""
    found = [value]
    if isinstance(value, dict):
        for v in value.values():
            found.extend(values(v))
    elif isinstance(value, list):
        for v in value:
            found.extend(values(v))
    return found


def test_templates_are_shipped() -> None:
    names = {p.relative_to(REPO).as_posix() for p in SHIPPED}
    assert {"policies/templates/audit.json.j2", "examples/templates/audit.json.j2"} <= names


def cases() -> list[Any]:
    """(template, event) pairs a run renders: a webhook sink receives batch_archived
    events only, so the callback templates are rendered for those alone."""
    templates = [*(str(p.relative_to(REPO)) for p in SHIPPED), DEFAULT_AUDIT, DEFAULT_WEBHOOK]
    return [
        pytest.param(template, event, id=f"{event['event']}-{template}")
        for template in templates
        for event in EVENTS
        if "callback" not in template or event["event"] == "batch_archived"
    ]


@pytest.mark.parametrize(("template", "event"), cases())
def test_every_shipped_template_names_the_governance_facts(template: str, event: Any) -> None:
    if template in (DEFAULT_AUDIT, DEFAULT_WEBHOOK):
        compiled = load_template(None, template)
    else:
        compiled = load_template(REPO / template, "", root=REPO)
    body = compiled.render_json(event)
    found = values(body)
    policy = event["policy"]
    for fact in (policy["sha256"], policy["git_commit"], event["archiver_version"],
                 event["target"]):
        assert fact in found, f"{template} leaves out {fact!r} for {event['event']}"

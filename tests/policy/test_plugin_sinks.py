"""A plugin sink is reviewed like a built-in one: its template is checked by `validate`,
rendered in `plan`'s samples, and the outbox names it by what it is."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import BaseModel, ConfigDict

from archiver.cli import cli
from archiver.policy import check_file, load_policy
from archiver.review.plan import SAMPLE_IDS
from archiver.review.samples import render_payloads, sink_templates
from archiver.stages import registry
from archiver.stages.descriptor import StageType
from archiver.templates import load_template
from tests.stage_types import install

from ._texts import VALID
from .conftest import Writer


class TicketOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    queue: str
    template: str | None = None


class Ticket:
    name = "ticket"
    events = frozenset({"batch_archived"})

    def __init__(self, options: TicketOptions, template: Any) -> None:
        self.queue = options.queue
        self.template = template
        self.sent: list[str] = []

    def render(self, event: Mapping[str, Any]) -> str:
        return str(self.template.render(event))

    def deliver(self, event_id: str, body: str) -> None:
        self.sent.append(body)


def _build(options: TicketOptions, ctx: Any) -> Ticket:
    path = ctx.path(options.template, what="template") if options.template else None
    return Ticket(options, load_template(path, "", root=ctx.policy.root) if path else None)


TICKET = StageType(kind="sink", name="ticket", options=TicketOptions, factory=_build,
                   events=frozenset({"batch_archived"}))

WITH_TICKET = VALID + """\
  - type: ticket
    options:
      queue: compliance
      template: templates/ticket.json.j2
"""


@pytest.fixture(autouse=True)
def _ticket(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, TICKET)


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_a_plugin_sinks_template_is_checked_at_its_line(write: Writer, tmp_path: Path) -> None:
    policy = write(WITH_TICKET)
    [missing] = check_file(policy)
    assert (missing.code, missing.line) == ("T001", _line(WITH_TICKET, "ticket.json.j2"))

    (tmp_path / "templates" / "ticket.json.j2").write_text('{"n": {{ batch.nosuch.deeper }}}')
    [broken] = check_file(policy)
    assert broken.code == "T003" and "batch_archived" in broken.message

    outside = WITH_TICKET.replace("templates/ticket.json.j2", "../../etc/passwd")
    [refused] = check_file(write(outside))
    assert (refused.code, refused.line) == ("T004", _line(outside, "etc/passwd"))


def test_plan_renders_a_plugin_sinks_samples(write: Writer, tmp_path: Path) -> None:
    path = write(WITH_TICKET)
    (tmp_path / "templates" / "ticket.json.j2").write_text(
        '{"queue": "compliance", "run": {{ run_id | tojson }}}')
    policy = load_policy(path)
    templates, _ = sink_templates(policy)
    assert [t.sink for t in templates] == ["webhook", "audit_log", "ticket"]
    payloads = render_payloads(policy, "c-1", [], {}, SAMPLE_IDS, events=("run_started",))
    assert not [p for p in payloads if p.sink == "ticket"]  # it receives batches only
    assert check_file(path) == []

    # `archiver plan` lists the embedded simulator and shows the plugin's batch sample.
    shown = CliRunner().invoke(cli, ["plan", str(path)], catch_exceptions=False,
                               env={"DEMO_WEBHOOK_SECRET": ""})
    assert shown.exit_code == 0, shown.output
    assert "sinks[2] ticket · batch_archived" in shown.output
    assert '"queue": "compliance"' in shown.output


def test_the_outbox_names_a_plugin_sink_by_its_type_and_options(write: Writer,
                                                                tmp_path: Path) -> None:
    path = write(WITH_TICKET)
    (tmp_path / "templates" / "ticket.json.j2").write_text('{"x": 1}')
    policy = load_policy(path)
    ticket = registry.build(policy.sinks[2], registry.BuildContext(policy=policy))
    other = policy.sinks[2].model_copy(update={"options": TicketOptions(queue="legal")})
    named = registry.build(other, registry.BuildContext(policy=policy))
    assert ticket.identity.startswith("ticket:") and named.identity.startswith("ticket:")
    assert ticket.identity != named.identity

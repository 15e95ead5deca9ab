"""The plan for people: a table per campaign, the reasons, then the sample payloads."""

from __future__ import annotations

import json
from collections import Counter

from rich.console import Console
from rich.table import Table
from rich.text import Text

from archiver.report.redact import printable
from archiver.review.plan import CampaignPlan, Plan, plan_json
from archiver.review.show import shown_path

_STATUS = {"ok": "", "would_abort": "WOULD ABORT", "error": "LISTING FAILED"}


def print_plan(plan: Plan, console: Console) -> None:
    policy = plan.policy
    where = f" ({shown_path(policy.path)})" if policy.path else ""
    console.print(f"Plan for policy [bold]{policy.name}[/bold]{where}, sha256 {policy.sha256[:12]}")
    console.print(f"Listed from {plan.base_url}; nothing that changes state was sent.")
    for campaign in plan.campaigns:
        console.print()
        _print_campaign(campaign, console)
    console.print()
    _print_totals(plan, console)
    _print_samples(plan, console)


def _retention(counter: Counter[int]) -> str:
    # No space inside an entry, so a narrow terminal wraps between entries only.
    return ", ".join(f"{days}d={n}" for days, n in sorted(counter.items())) or "-"


def _print_campaign(c: CampaignPlan, console: Console) -> None:
    would = c.would()
    flag = _STATUS[c.status]
    title = f"campaign {c.id}" + (f" · {flag}" if flag else "")
    if c.status == "error":
        console.print(f"[bold]{title}[/bold]")
        console.print(f"  {printable(c.reason)}", markup=False, soft_wrap=True)
        return
    blocked = c.status == "would_abort"
    table = Table(title=title, title_justify="left")
    table.add_column("outcome")
    table.add_column("blocked" if blocked else "archive", justify="right")
    table.add_column("skip", justify="right")
    table.add_column("quarantine", justify="right")
    # An aborting campaign archives nothing: its last column counts the violations instead.
    table.add_column("abort" if blocked else "retention (days=attempts)",
                     justify="right" if blocked else "left")
    for name, row in sorted(c.outcomes.items()):
        last = str(row.abort) if blocked else _retention(row.retention)
        # Outcome codes are the server's text: shown escaped, never read as markup.
        table.add_row(Text(printable(name)), str(row.archive), str(row.skip), str(row.quarantine), last)
    table.add_section()
    last = str(c.total.abort) if blocked else _retention(c.total.retention)
    table.add_row(f"all {c.listed} listed", str(c.total.archive), str(c.total.skip),
                  str(c.total.quarantine), last, style="bold")
    console.print(table)
    if blocked and c.stop is not None:
        stop = c.stop
        console.print(
            f"  would abort: {printable(c.reason)}; {c.total.abort} attempt(s) violate, "
            f"{c.total.archive} that pass every filter would not be archived",
            markup=False, soft_wrap=True,
        )
        console.print(
            f"  a run stops listing it at the first violation (attempt "
            f"{printable(stop.attempt_id)}, listed {stop.listed} of {c.listed}) and would "
            f"record skip {stop.skip}, quarantine {stop.quarantine} (the violation "
            f"included), fail {stop.fail} (those before it that pass every filter)",
            markup=False, soft_wrap=True,
        )
    for item in plan_reasons(c):
        console.print(f"  {printable(item)}", markup=False, soft_wrap=True)
    if not blocked:
        console.print(
            f"  would archive {would['archive']}, skip {would['skip']}, "
            f"quarantine {would['quarantine']}",
            markup=False, soft_wrap=True,
        )
    if c.dialing is not None:
        console.print(f"  dialing: {printable(c.dialing.note)}", markup=False, soft_wrap=True)


def plan_reasons(c: CampaignPlan) -> list[str]:
    ordered = sorted(c.reasons.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1]))
    return [f"{n:>6} {kind}: {reason}" for (kind, reason), n in ordered]


def _print_totals(plan: Plan, console: Console) -> None:
    t = plan.totals()
    line = (
        f"Total: listed {t['listed']}, would archive {t['archive']}, skip {t['skip']}, "
        f"quarantine {t['quarantine']}"
    )
    if t["violations"]:
        line += (
            f", fail {t['fail']}; {t['blocked']} not archived because their campaign would "
            "abort"
        )
    console.print(line, markup=False, soft_wrap=True)
    if plan.would_pause:
        shown = ", ".join(printable(c) for c in plan.would_pause)
        console.print(f"Run would pause (and resume after): {shown}", markup=False, soft_wrap=True)
    for note in plan.notes:
        console.print(f"note: {note}", markup=False, soft_wrap=True)


def _print_samples(plan: Plan, console: Console) -> None:
    if not plan.samples:
        return
    console.print()
    where = f" from campaign {plan.sample_campaign}" if plan.sample_campaign else ""
    console.print(
        f"[bold]Sample payloads[/bold]{where} (run and batch ids, timestamps and the API's "
        "answer are placeholders)"
    )
    for payload in plan.samples:
        console.print()
        console.print(f"{payload.label}  ({shown_path(payload.template)})", markup=False, soft_wrap=True)
        console.print(json.dumps(payload.body, indent=2, ensure_ascii=False), markup=False,
                      highlight=False, soft_wrap=True)


def plan_json_text(plan: Plan) -> str:
    return json.dumps(plan_json(plan), indent=2, ensure_ascii=False)

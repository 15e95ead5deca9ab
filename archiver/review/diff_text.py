"""The diff for people: counts by kind of change, then the attempts that change."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from archiver.report.redact import printable
from archiver.review.diff import ABSENT, PolicyDiff, diff_json
from archiver.review.verdicts import Verdict


def describe(v: Verdict | None) -> str:
    if v is None:
        return "(campaign not in policy)"
    if v.kind == "archive":
        return f"archive, {v.retention_days} days"
    return f"{v.kind}: {v.reason}"


_STATE = {"ok": "runs", "would_abort": "would abort", ABSENT: "not in policy"}


def print_diff(d: PolicyDiff, console: Console, *, max_rows: int) -> None:
    console.print(f"--- {d.old_name} ({d.old.name}, sha256 {d.old.sha256[:12]})", markup=False)
    console.print(f"+++ {d.new_name} ({d.new.name}, sha256 {d.new.sha256[:12]})", markup=False)
    console.print(f"fixtures: {d.fixtures}", markup=False, soft_wrap=True)
    for c in d.campaigns:
        if c.old != c.new:
            console.print(f"campaign {c.id}: {_STATE[c.old]} -> {_STATE[c.new]}", markup=False)
    for warning in d.warnings:
        console.print(printable(f"warning: {warning}"), markup=False, soft_wrap=True,
                      highlight=False)
    if not d.changes:
        but = (
            ", but not every outcome the policies name was among them (see the warnings)"
            if d.unreached else ""
        )
        console.print(f"no decision or retention changes in {d.compared} attempts{but}",
                      markup=False, soft_wrap=True, highlight=False)
        return
    console.print(f"{len(d.changes)} of {d.compared} attempts change")
    counts = Table(show_edge=False, box=None, pad_edge=False)
    counts.add_column("change")
    counts.add_column("attempts", justify="right")
    for kind, n in d.counts().items():
        counts.add_row(kind, str(n))
    console.print(counts)
    shown = d.changes[:max_rows]
    campaign = None
    for change in shown:
        if change.campaign_id != campaign:
            campaign = change.campaign_id
            console.print()
            console.print(printable(f"campaign {campaign}"), markup=False)
        # Ids, outcomes and reasons are the records' text (a fixtures file, a listing):
        # shown escaped, so one attempt is one line and nothing reaches the terminal.
        console.print(
            printable(
                f"  {change.attempt_id}  {change.outcome or '-'}  "
                f"{describe(change.old)} -> {describe(change.new)}"
            ),
            markup=False, soft_wrap=True, highlight=False,
        )
    hidden = len(d.changes) - max_rows
    if hidden > 0 and not shown:
        console.print(f"changed attempts not listed (--max-rows {max_rows}; --max-rows N to list "
                      "N of them, or --format json for all)")
    elif hidden > 0:
        console.print(f"... and {hidden} more attempt(s) (--max-rows N, or --format json for all)")


def diff_json_text(d: PolicyDiff) -> str:
    return json.dumps(diff_json(d), indent=2, ensure_ascii=False)

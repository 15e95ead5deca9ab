"""The end-of-run summary: a table per campaign and one of the API calls, from the report."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from archiver.engine.records import FINAL_STATES

MAX_REASONS = 5
# Piped or redirected output has no width to respect; truncated campaign ids help nobody.
PLAIN_WIDTH = 160
CAMPAIGN_MIN_WIDTH = 10
KEYS = ("listed", *FINAL_STATES, "success_rate", "retries", "rate_limited", "paused")
HEADERS = ("listed", *FINAL_STATES, "success", "retries", "429s", "paused")
SHORT_HEADERS = ("listed", "arch.", "skip.", "quar.", "failed", "ok", "retry", "429", "paused")
API_KEYS = ("retries", "rate_limited")  # left to the API table on the narrowest terminals
WIDE = 128  # columns the full headers need beside a shortened campaign id
NARROW = 100


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.1f} ms"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _cells(counts: dict[str, Any], keys: list[str], pauses: int | None, resumes: int | None) -> list[str]:
    cells = {k: _count(counts.get(k)) for k in ("listed", *FINAL_STATES, "retries", "rate_limited")}
    cells["success_rate"] = _rate(counts.get("success_rate"))
    cells["paused"] = f"{_count(pauses)}/{_count(resumes)}"
    return [cells[k] for k in keys]


def campaign_table(report: dict[str, Any], width: int = PLAIN_WIDTH) -> Table:
    """Counts per campaign and for the run; narrower terminals get shorter headers, then fewer columns."""
    title = f"{report['policy']['name']} · run {report['run_id']}"
    narrow = width < NARROW
    table = _table(title, width)
    headers = HEADERS if width >= WIDE else SHORT_HEADERS
    # On a narrow terminal the campaign id gives way first: its start is enough to tell them apart.
    table.add_column("campaign", overflow="ellipsis", min_width=CAMPAIGN_MIN_WIDTH)
    table.add_column("status", no_wrap=True)
    shown = [h for h, key in zip(headers, KEYS, strict=True) if not (narrow and key in API_KEYS)]
    for col in shown:
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    keys = [k for k in KEYS if not (narrow and k in API_KEYS)]
    for c in report["campaigns"]:
        table.add_row(Text(c["id"]), Text(c["status"]), *_cells(c, keys, c.get("pauses"), c.get("resumes")))
    api = report.get("api") or {}
    totals = {**report["totals"], "retries": api.get("retries"), "rate_limited": api.get("rate_limited")}
    table.add_section()
    table.add_row("all", "", *_cells(totals, keys, report.get("pauses"), report.get("resumes")))
    return table


def latency_table(report: dict[str, Any], width: int = PLAIN_WIDTH) -> Table | None:
    """API tries per endpoint (per campaign too when the tries name their campaign)."""
    scopes: list[tuple[str, dict[str, Any]]] = [
        (c["id"], c["api"]) for c in report["campaigns"] if c.get("api")
    ]
    per_campaign = bool(scopes)
    if report.get("api"):
        scopes.append(("all", report["api"]))
    if not scopes:
        return None
    table = _table("API calls", width)
    if per_campaign:
        table.add_column("campaign", overflow="ellipsis", min_width=CAMPAIGN_MIN_WIDTH)
    table.add_column("endpoint", no_wrap=True)
    for col in ("requests", "p50", "p95", "p99", "retries", "429s", "errors"):
        table.add_column(col, justify="right", no_wrap=True)
    for scope, api in scopes:
        for name, e in api["endpoints"].items():
            latency = e["latency_seconds"]
            cells = [
                name, _count(e["requests"]), _ms(latency["p50"]), _ms(latency["p95"]),
                _ms(latency["p99"]), _count(e["retries"]), _count(e["rate_limited"]),
                _count(e["errors"]),
            ]
            table.add_row(*([Text(scope)] if per_campaign else []), *cells)
    return table


def _table(title: str, width: int) -> Table:
    if width < NARROW:  # no borders: every column counts
        return Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0))
    return Table(title=title)


def plain_console() -> Console:
    """A console for stdout; piped, it is at least PLAIN_WIDTH wide (no terminal width to
    respect, and cut-off ids are useless)."""
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, PLAIN_WIDTH)
    return console


def print_summary(report: dict[str, Any], *, quiet: bool = False, console: Console | None = None) -> None:
    if console is None:
        console = plain_console()
    totals = report["totals"]
    if not quiet:
        console.print(campaign_table(report, console.width))
        latency = latency_table(report, console.width)
        if latency is not None:
            console.print(latency)
        for c in report["campaigns"]:
            for r in c["reasons"][:MAX_REASONS]:
                console.print(f"  {c['id']}: {r['count']} {r['state']}: {r['reason']}", markup=False)
            if c["status"] != "done":
                console.print(f"  {c['id']}: {c['status']}: {c['reason']}", markup=False)
    console.print(
        f"listed {totals['listed']}, archived {totals['archived']}, skipped {totals['skipped']}, "
        f"quarantined {totals['quarantined']}, failed {totals['failed']}",
        markup=False, highlight=False,
    )
    now = int(report.get("archived_in_this_run", totals["archived"]))
    if now == 0 and totals["failed"] == 0:
        console.print("nothing left to do: no attempt needed an archive call", markup=False)
    elif now != totals["archived"]:
        console.print(
            f"{now} archived by this run, {totals['archived'] - now} by earlier runs",
            markup=False, highlight=False,
        )
    pending = {k: v["pending"] for k, v in report.get("outbox", {}).items() if v["pending"]}
    if pending:
        console.print(f"undelivered sink events kept for the next run: {pending}", markup=False)

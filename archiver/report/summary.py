"""The end-of-run summary: a table per campaign and one of the API calls, from the report.

Reasons and ids can be a server's text: every one is shown through
:func:`archiver.report.redact.printable`, so an escape sequence or a newline in
it is displayed, never obeyed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from archiver.engine.records import FINAL_STATES
from archiver.report.redact import printable

MAX_REASONS = 5
# Piped or redirected output has no width to respect; truncated campaign ids help nobody.
PLAIN_WIDTH = 160
CAMPAIGN_MIN_WIDTH = 10
KEYS = ("listed", *FINAL_STATES, "success_rate", "retries", "rate_limited", "paused")
HEADERS = ("listed", *FINAL_STATES, "success", "retries", "429s", "paused")
SHORT_HEADERS = ("listed", "arch.", "skip.", "quar.", "failed", "held", "ok", "retry", "429", "paused")
API_KEYS = ("retries", "rate_limited")  # left to the API table on the narrowest terminals
WIDE = 128  # columns the full headers need beside a shortened campaign id
NARROW = 100
RESUME = "interrupted; run again to resume"
# What ``reconciled`` counts, after its number.
RECONCILED = (
    "reconciled: archived by an earlier run's batch, its answer never recorded (not "
    "listed by this run)"
)
# Campaign statuses that mean the campaign's work was not done (its reason says why).
UNFINISHED = ("failed", "aborted", "busy")
# How the engine and the client word a failure that is only the run stopping
# (campaign reasons, abandoned calls): in an interrupted run, not done rather than failed.
_STOPPED_WORDS = ("run interrupted", "the run is stopping", "not archived in this run")


def stopped_by_interruption(reason: str | None) -> bool:
    """Whether a failure ``reason`` only says that the run was stopping."""
    return reason is not None and any(w in reason for w in _STOPPED_WORDS)


def shown_status(campaign: dict[str, Any], interrupted: bool) -> str:
    """A campaign's status as a person should read it: ``interrupted``, not ``failed``,
    when all that failed it was the run stopping."""
    if interrupted and campaign["status"] == "failed" and stopped_by_interruption(campaign["reason"]):
        return "interrupted"
    return str(campaign["status"])


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
    title = printable(f"{report['policy']['name']} · run {report['run_id']}")
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
    interrupted = bool(report.get("interrupted"))
    for c in report["campaigns"]:
        table.add_row(
            Text(printable(c["id"])), Text(printable(shown_status(c, interrupted))),
            *_cells(c, keys, c.get("pauses"), c.get("resumes")),
        )
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
            table.add_row(*([Text(printable(scope))] if per_campaign else []), *cells)
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


def _line(console: Console, text: str) -> None:
    console.print(printable(text), markup=False, highlight=False)


def _campaign_lines(console: Console, c: dict[str, Any], interrupted: bool) -> None:
    """Why attempts of a campaign were not archived; in an interrupted run, what is left."""

    def left_by_the_stop(r: dict[str, Any]) -> bool:
        return interrupted and r["state"] == "failed" and stopped_by_interruption(r["reason"])

    if c.get("reconciled"):
        _line(console, f"  {c['id']}: {c['reconciled']:,} {RECONCILED}")
    left = sum(r["count"] for r in c["reasons"] if left_by_the_stop(r))
    # Pending attempts (a run stopped at --max-batches) have no reason of their own: the
    # campaign's own line below says how many are left, and why.
    shown = [r for r in c["reasons"] if not left_by_the_stop(r) and r["state"] != "pending"]
    for r in shown[:MAX_REASONS]:
        _line(console, f"  {c['id']}: {r['count']} {r['state']}: {r['reason']}")
    if shown_status(c, interrupted) == "interrupted" or left:
        _line(console, f"  {c['id']}: {RESUME} ({left:,} not done yet)")
    elif c["status"] != "done":
        _line(console, f"  {c['id']}: {c['status']}: {c['reason']}")
    endpoints = (c.get("api") or {}).get("endpoints", {}).values()
    dialing = sum(e.get("dialing", 0) for e in endpoints)
    if dialing:
        _line(
            console,
            f"  {c['id']}: {dialing:,} answer(s) 409 dialing (expected: the policy pauses or "
            "skips a dialing campaign), not counted as errors",
        )


def not_finished(campaigns: list[dict[str, Any]]) -> str:
    """"1 campaign failed", "3 campaigns: 2 failed, 1 busy": those whose work was not
    done, by status; "" when there are none."""
    counts = Counter(c["status"] for c in campaigns if c["status"] in UNFINISHED)
    total = sum(counts.values())
    if not total:
        return ""
    noun = "campaign" if total == 1 else "campaigns"
    if len(counts) == 1:
        return f"{total} {noun} {next(iter(counts))}"
    return f"{total} {noun}: " + ", ".join(f"{n} {status}" for status, n in counts.items())


def stopped_line(limit: dict[str, Any]) -> str:
    """What a run stopped by ``--max-batches`` says: how far it went, and what to do."""
    sent, most = int(limit["sent"]), int(limit["max_batches"])
    earlier = "" if sent >= most else f", {most - sent} sent for the policies before"
    return (
        f"stopped after {sent} batch{'es' if sent != 1 else ''} (--max-batches {most}{earlier}); "
        "run again to continue"
    )


def print_summary(report: dict[str, Any], *, quiet: bool = False, console: Console | None = None) -> None:
    if console is None:
        console = plain_console()
    totals = report["totals"]
    interrupted = bool(report.get("interrupted"))
    if not quiet:
        console.print(campaign_table(report, console.width))
        latency = latency_table(report, console.width)
        if latency is not None:
            console.print(latency)
        for c in report["campaigns"]:
            _campaign_lines(console, c, interrupted)
    counts = (
        f"listed {totals['listed']}, archived {totals['archived']}, skipped {totals['skipped']}, "
        f"quarantined {totals['quarantined']}"
    )
    if totals.get("held"):
        counts += f", held {totals['held']}"
    if totals.get("pending"):
        counts += f", pending {totals['pending']}"
    # Not a state of a listed attempt: apart from the counts that add up to listed.
    reconciled = f"; reconciled {totals['reconciled']}" if totals.get("reconciled") else ""
    if interrupted:
        # Attempts a stopped run left are not failures: the next run picks them up.
        _line(console, f"{counts}, not done {totals['failed']}{reconciled}")
        _line(console, RESUME)
        return
    _line(console, f"{counts}, failed {totals['failed']}{reconciled}")
    limit = report.get("batch_limit") or {}
    now = int(report.get("archived_in_this_run", totals["archived"]))
    if limit.get("stopped"):
        _line(console, stopped_line(limit))
    else:
        # A campaign that failed before listing anything left nothing failed to count:
        # without this line, "failed 0" (and "nothing left to do") would read as success.
        unfinished = not_finished(report["campaigns"])
        if now == 0 and totals["failed"] == 0:
            if unfinished:
                _line(console, f"nothing archived: {unfinished} (see above)")
            else:
                console.print("nothing left to do: no attempt needed an archive call",
                              markup=False)
        else:
            if now != totals["archived"]:
                console.print(
                    f"{now} archived by this run, {totals['archived'] - now} by earlier runs",
                    markup=False, highlight=False,
                )
            if unfinished:
                _line(console, f"{unfinished} (see above)")
    pending = {k: v["pending"] for k, v in report.get("outbox", {}).items() if v["pending"]}
    if pending:
        console.print(f"undelivered sink events kept for the next run: {pending}", markup=False)

"""``archiver runs``: past runs recorded in a state store, and their reports."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich import box
from rich.table import Table
from rich.text import Text

from archiver.commands import runs_outbox, runs_prune
from archiver.commands._state import default_state, state_from_env, state_options
from archiver.commands._text import RUN_ID
from archiver.engine.records import FINAL_STATES
from archiver.errors import StateError, UsageError
from archiver.report.summary import PLAIN_WIDTH, plain_console
from archiver.state.folder import STATE_DIR_NAME
from archiver.state.location import StateLocation
from archiver.state.store import Store
from archiver.target import CAMPAIGN_ARCHIVE, EMBEDDED

F = TypeVar("F", bound=Callable[..., Any])
COUNTS = ("listed", *FINAL_STATES)
# Apart from COUNTS (which add up to listed): attempts of an earlier run's batch that died
# before recording its answer, found archived (gone from the listing). Null for a run
# whose report predates the figure (it counted them as listed and archived).
RECONCILED = "reconciled"
WIDE = 110  # terminal columns needed for the full table


def resolve_state_dir(state_dir: StateLocation | None, policy_path: Path | None) -> StateLocation:
    if state_dir is not None:
        return state_dir
    if policy_path is not None:
        return default_state(policy_path)
    return state_from_env() or Path(STATE_DIR_NAME)


@click.group("runs", invoke_without_command=True)
@state_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Most recent runs shown.")
@click.pass_context
def command(
    ctx: click.Context, state_dir: StateLocation | None, policy_path: Path | None, fmt: str,
    limit: int,
) -> None:
    """Past runs from the state store, newest first, with their outcome and counts.

    `archiver runs show ID` prints a run's JSON report (a unique prefix of ID is enough);
    `archiver runs prune --older-than 90d` removes the finished history no run needs again.
    """
    ctx.obj = resolve_state_dir(state_dir, policy_path)
    if ctx.invoked_subcommand is not None:
        return
    store = Store.open_existing(ctx.obj, read_only=True)
    try:
        runs = store.runs.recent(limit=limit)
    finally:
        store.close()
    # Run ids start with their start time: they order runs started within the same millisecond.
    runs.sort(key=lambda r: (r["started_at"] or "", r["id"]), reverse=True)
    rows = [summary_row(run) for run in runs]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    console = plain_console()
    if not rows:
        console.print(f"no runs recorded in {ctx.obj}", markup=False)
        return
    console.print(runs_table(rows, console.width))


@command.command("show")
@click.argument("run_id", type=RUN_ID)
@state_options
@click.pass_context
def show(
    ctx: click.Context, run_id: str, state_dir: StateLocation | None, policy_path: Path | None
) -> None:
    """Print the JSON report of run RUN_ID (or of the one run whose id starts with it)."""
    folder = resolve_state_dir(state_dir, policy_path) if state_dir or policy_path else ctx.obj
    store = Store.open_existing(folder, read_only=True)
    try:
        run = find_run(store.runs.starting_with(run_id), run_id)
    finally:
        store.close()
    if run["report"] is None:
        raise StateError(f"run {run['id']} has no report (status: {run['status']})")
    click.echo(json.dumps(run["report"], indent=2))


def find_run(runs: list[dict[str, Any]], wanted: str) -> dict[str, Any]:
    """The run with id ``wanted``, else the only one whose id starts with it."""
    exact = [r for r in runs if r["id"] == wanted]
    if exact:
        return exact[0]
    matches = [r for r in runs if r["id"].startswith(wanted)]
    if not matches:
        raise UsageError(f"no run with id {wanted!r} (see `archiver runs`)")
    if len(matches) > 1:
        shown = ", ".join(r["id"] for r in matches[:5])
        raise UsageError(f"run id prefix {wanted!r} is ambiguous: {shown}")
    return matches[0]


def summary_row(run: dict[str, Any]) -> dict[str, Any]:
    """One run as ``archiver runs --format json`` lists it; counts are null without a report."""
    report = run["report"] or {}
    totals = report.get("totals") or {}
    policy = report.get("policy") or {}
    return {
        "id": run["id"],
        "policy": run["policy_name"],
        # Which reviewed text ran: its hash (recorded at start), git commit and whether
        # the file differed from it (from the report; null before either was recorded).
        "policy_sha256": run.get("policy_sha256"),
        "git_commit": policy.get("git_commit"),
        "git_dirty": policy.get("git_dirty"),
        "archiver_version": report.get("tool_version"),
        # backend, host (`embedded`: the built-in simulator) and tenant; null for runs
        # recorded before targets were.
        "target": run["target"],
        "started_at": run["started_at"],
        "finished_at": run["finished_at"],
        "status": run["status"],
        "exit_code": run["exit_code"],
        "campaigns": len(report.get("campaigns", [])) if report else None,
        **{k: totals.get(k) for k in (*COUNTS, RECONCILED)},
    }


def _duration(started: str | None, finished: str | None) -> str:
    if not started or not finished:
        return "-"
    try:
        seconds = (datetime.fromisoformat(finished)
                   - datetime.fromisoformat(started)).total_seconds()
    except (ValueError, TypeError):  # not times archiver wrote (a store edited by hand)
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


_STATUS_STYLE = {
    "completed": "green", "failed": "red", "interrupted": "yellow", "stopped": "yellow",
    "running": "cyan",
}


def policy_text(row: dict[str, Any]) -> Text:
    """The policy's name, the start of its hash, and of its commit (`*`: the file differed)."""
    shown = row["policy"] or ""
    if row.get("policy_sha256"):
        shown += f" {row['policy_sha256'][:8]}"
    if row.get("git_commit"):
        shown += f" @{row['git_commit'][:7]}" + ("*" if row.get("git_dirty") else "")
    return Text(shown)


def target_text(target: dict[str, Any] | None) -> Text:
    """The host a run talked to (its backend too when not the default), `-` if unrecorded."""
    if not target:
        return Text("-")
    shown = str(target["host"])
    if target["backend"] != CAMPAIGN_ARCHIVE:
        shown = f"{target['backend']}:{shown}"
    if target.get("tenant"):
        shown += f" ({target['tenant']})"
    return Text(shown, style="yellow" if target["host"] == EMBEDDED else "")


def runs_table(rows: list[dict[str, Any]], width: int = PLAIN_WIDTH) -> Table:
    """The runs as a table; below ``WIDE`` columns, without duration, skipped and quarantined.
    A ``reconciled`` column once a run shown reconciled something."""
    wide = width >= WIDE
    counts: tuple[str, ...] = COUNTS if wide else ("listed", "archived", "failed")
    if any(row.get(RECONCILED) for row in rows):
        counts = (*counts, RECONCILED)
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False)
    table.add_column("run", no_wrap=True)
    table.add_column("policy")
    table.add_column("target")
    table.add_column("started", no_wrap=True)
    if wide:
        table.add_column("took", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for col in counts:
        table.add_column(col, justify="right")
    for row in rows:
        started = (row["started_at"] or "-")[:16].replace("T", " ")
        # Text, not str: a policy name is data, never rich markup.
        cells = [
            Text(row["id"]), policy_text(row), target_text(row["target"]),
            Text(started if wide else started[5:]),
        ]
        if wide:
            cells.append(Text(_duration(row["started_at"], row["finished_at"])))
        cells.append(Text(row["status"], style=_STATUS_STYLE.get(row["status"], "")))
        cells += [Text("-" if row[k] is None else f"{row[k]:,}") for k in counts]
        table.add_row(*cells)
    return table


command.add_command(runs_outbox.command)
command.add_command(runs_prune.command)

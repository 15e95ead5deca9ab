"""``archiver runs prune``: remove the finished history a state store no longer needs."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import click

from archiver.commands._params import ParamType
from archiver.commands._state import state_options, subcommand_state
from archiver.state import location
from archiver.state.location import StateLocation, describe
from archiver.state.prune import TABLES, Pruned
from archiver.state.store import Store

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+)([smhdw])")
# Longer is refused: no history is that old, and the cutoff would leave the calendar.
MAX_DURATION = timedelta(days=36_500)


class Duration(ParamType[timedelta]):
    """``30d``, ``12h``, ``1d12h``: numbers with s, m, h, d or w (a week)."""

    name = "DURATION"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        if isinstance(value, timedelta):
            return value
        text = str(value).strip().lower()
        if not text or _PART.sub("", text):
            self.fail(f"{value!r} is not a duration like 30d, 12h or 1d12h", param, ctx)
        parts = _PART.findall(text)
        # A number of more than 12 digits is past the limit in any unit (and one past
        # Python's digit limit could not even be converted).
        too_long = any(len(n.lstrip("0")) > 12 for n, _ in parts)
        seconds = 0 if too_long else sum(int(n) * _UNITS[u] for n, u in parts)
        if too_long or seconds > MAX_DURATION.total_seconds():
            self.fail(f"{value!r} is longer than {MAX_DURATION.days} days (100 years): nothing "
                      "finished that long ago", param, ctx)
        return timedelta(seconds=seconds)


@click.command("prune")
@click.option(
    "--older-than", "older_than", type=Duration(), required=True,
    help="Remove what finished (or was delivered) longer ago than this: 30d, 12h, 2w, 1d12h.",
)
@state_options
@click.option("--dry-run", is_flag=True, help="Only print what would be removed.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.pass_context
def command(
    ctx: click.Context, older_than: timedelta, state_dir: StateLocation | None,
    policy_path: Path | None, dry_run: bool, fmt: str,
) -> None:
    """Remove the history of runs finished more than --older-than ago, and sink events
    delivered that long ago, in one transaction; print the rows removed per table.

    \b
    Removed: the run (its report), its campaigns' statuses, its attempts that were
    skipped, quarantined, failed or held (a later run that lists one decides it
    afresh, as it always does), its batches that archived nothing, and delivered
    outbox events.
    \b
    Never removed: an archived attempt, nor a batch that archived something (this
    ledger is what keeps a later run from archiving an attempt again); an open batch
    (prepared, or sent with no known outcome) and the run and attempts it holds;
    anything of a run still running; a pending, disabled or dropped event; the latest
    receipt of each audit log (`audit verify --state` answers the same after a prune);
    pauses, listing watermarks and the running totals.

    A state folder is pruned while no run holds it (exit 75 otherwise); a PostgreSQL
    store while runs go on. SQLite reuses the freed space: the file does not shrink.
    """
    folder = subcommand_state(ctx, state_dir, policy_path)
    store = Store.open_existing(folder)
    try:
        with location.run_lock(folder):
            pruned = store.prune(older_than, dry_run=dry_run)
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps({"state": str(folder), "cutoff": pruned.cutoff,
                               "dry_run": pruned.dry_run, "removed": pruned.removed}, indent=2))
        return
    click.echo(_text(pruned, describe(folder)))


def _text(pruned: Pruned, where: str) -> str:
    verb = "would remove" if pruned.dry_run else "removed"
    lines = [f"{verb} history finished before {pruned.cutoff} from {where}:"]
    lines += [f"  {table:<10} {pruned.removed[table]:>10,}" for table in TABLES]
    if pruned.dry_run:
        lines.append("nothing was changed (--dry-run)")
    return "\n".join(lines)

"""``archiver runs outbox``: undelivered sink events by sink, and dropping a sink's.

A run refuses to start while the outbox holds events for a sink its policy no
longer has; this is how an operator sees them and, when they are not to be
delivered, drops them. Dropped events stay in the store, marked ``dropped``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich import box
from rich.table import Table
from rich.text import Text

from archiver.clock import now
from archiver.commands._state import state_options, subcommand_state
from archiver.commands._text import TEXT
from archiver.errors import StateLockedError, UsageError
from archiver.report.summary import plain_console
from archiver.state import location
from archiver.state.location import StateLocation
from archiver.state.store import Store

COUNTS = ("pending", "disabled", "delivered", "dropped")


@click.command("outbox")
@state_options
@click.option(
    "--drop", "drop", metavar="SINK_ID", type=TEXT,
    help="Mark every undelivered event of SINK_ID (as listed) dropped: kept in the store, "
    "never delivered.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.pass_context
def command(
    ctx: click.Context, state_dir: StateLocation | None, policy_path: Path | None,
    drop: str | None, fmt: str,
) -> None:
    """Sink events by sink: pending, disabled (endpoint gone), delivered and dropped.

    A sink is named by where it delivers: `webhook:URL` (`webhook:embedded` for the
    built-in simulator's receiver), `audit_log:FILE`. `--drop SINK_ID` gives up on a
    sink's undelivered events, for instance of a sink taken out of the policy; a run
    that finds events for a sink its policy does not have refuses to start (exit 78).
    """
    folder = subcommand_state(ctx, state_dir, policy_path)
    if drop is not None:
        _drop(folder, drop)
        return
    store = Store.open_existing(folder, read_only=True)
    try:
        rows = store.events.by_sink()
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    console = plain_console()
    if not rows:
        console.print(f"no sink events recorded in {folder}", markup=False)
        return
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False)
    table.add_column("sink", overflow="fold")
    for col in COUNTS:
        table.add_column(col, justify="right")
    table.add_column("oldest undelivered", no_wrap=True)
    for row in rows:
        table.add_row(
            Text(row["sink"]), *(Text(f"{row[c]:,}") for c in COUNTS),
            Text(row["oldest_undelivered"] or "-"),
        )
    console.print(table)


def _drop(folder: StateLocation, sink: str) -> None:
    store = Store.open_existing(folder)
    try:
        # Not while a run delivers from the same outbox: the folder's run lock, or (a
        # store runs share) the sink's own.
        with location.run_lock(folder), store.delivering(sink, wait=False) as alone:
            if not alone:
                raise StateLockedError(
                    f"a run is delivering sink {sink} from {folder}; wait for it to finish"
                )
            # A store runs share: a live run that delivers the sink, not delivering right
            # now, would lose the events it records (its batches' lines and webhooks).
            # Held until the events are given up: a run starting meanwhile waits.
            with store.dropping(sink) as user:
                if user is not None:
                    raise StateLockedError(
                        f"sink {sink} is delivered by {user}, still running; wait for it "
                        "to finish"
                    )
                dropped = store.events.drop_undelivered(
                    sink, f"dropped at {now()} by `archiver runs outbox --drop`"
                )
    finally:
        store.close()
    if not dropped:
        raise UsageError(
            f"no undelivered events of sink {sink!r} in {folder} (see `archiver runs outbox`)"
        )
    click.echo(
        f"dropped {dropped} undelivered event(s) of {sink}: kept in the store as dropped, "
        "never to be delivered"
    )

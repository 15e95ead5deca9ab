"""The cxone personality standalone: ``python -m archiver.simulator.cxone`` (until Ctrl-C)."""

from __future__ import annotations

import click

from archiver.errors import UsageError
from archiver.netutil import is_loopback_host
from archiver.simulator.cxone.config import Behaviour, CxoneSimConfig
from archiver.simulator.cxone.server import CxoneSimulator
from archiver.simulator.httpbase import wait_for_interrupt


def _loopback(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not is_loopback_host(value):
        raise click.BadParameter("the simulator listens on loopback addresses only")
    return value


@click.command(name="simulate-cxone")
@click.option("--port", default=8090, show_default=True, help="TCP port; 0 picks a free one.")
@click.option("--host", default="127.0.0.1", show_default=True, callback=_loopback,
              help="Address to listen on; loopback only.")
@click.option("--seed", default=7, show_default=True, help="Seed of the data and the faults.")
@click.option("--campaigns", default=2, show_default=True, metavar="N")
@click.option("--contacts", default=300, show_default=True, metavar="N",
              help="Completed contacts per campaign.")
@click.option("--churn", default=0, show_default=True, metavar="N",
              help="Contacts updated (moved to the end) after each contacts/completed answer.")
@click.option("--rate-limit", type=float, default=0.0, show_default=True, metavar="RPS",
              help="Answer 429, without Retry-After, above this many requests a second "
                   "(invented: no figure is published); 0 is off.")
@click.option("--error-rate", default=0.0, show_default=True,
              help="Share of API calls answered 500, 502 or 503.")
@click.option("--token-lifetime", default=3600.0, show_default=True, metavar="SECONDS")
@click.option("--latency-ms", default=0.0, show_default=True)
def command(port: int, host: str, seed: int, campaigns: int, contacts: int, churn: int,
            rate_limit: float, error_rate: float, token_lifetime: float,
            latency_ms: float) -> None:
    """Run NICE CXone's platform API (the cxone personality) on loopback.

    Auth host and API host are this one port: point connection.auth_url at it.
    Observe it at /_sim/stats, /_sim/ledger, /_sim/skills, /_sim/requests and
    /_sim/contacts/CAMPAIGN_ID.
    """
    config = CxoneSimConfig(seed=seed, campaigns=campaigns, contacts_per_campaign=contacts)
    behaviour = Behaviour(
        churn_per_request=churn, invented_rate_limit_rps=rate_limit, error_5xx_rate=error_rate,
        token_lifetime_seconds=token_lifetime, latency_seconds=latency_ms / 1000.0,
    )
    try:
        sim = CxoneSimulator(config, behaviour, host=host, port=port).start()
    except OSError as err:
        raise UsageError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err
    try:
        _announce(sim)
        wait_for_interrupt()
    finally:
        sim.stop()
    click.echo("simulator stopped")


def _announce(sim: CxoneSimulator) -> None:
    base, c = sim.base_url, sim.config
    # Scripts wait for this exact first line before they connect.
    click.echo(f"listening on {base}")
    click.echo(f"tenant_id: {c.tenant_id}  (auth_url: {base})")
    # The simulator's own demo credentials, not anyone's secrets.
    click.echo(f"CXONE_ACCESS_KEY_ID={c.access_key_id} CXONE_ACCESS_KEY_SECRET={c.access_key_secret}")
    click.echo(f"CXONE_CLIENT_ID={c.client_id} CXONE_CLIENT_SECRET={c.client_secret}")
    click.echo(f"campaigns: {', '.join(sim.campaign_ids)}; calling lists: "
               f"{', '.join(sim.call_list_ids)}")
    for name in ("stats", "ledger", "skills", "requests"):
        click.echo(f"observe:   {base}/_sim/{name}")
    click.echo("press Ctrl-C to stop")

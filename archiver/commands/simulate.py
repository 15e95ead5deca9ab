"""``archiver simulate``: run the built-in CXone simulator until Ctrl-C."""

from __future__ import annotations

import click

from archiver.errors import UsageError
from archiver.netutil import is_loopback_host
from archiver.simulator import Faults, SimConfig, Simulator
from archiver.simulator.config import (
    DEMO_CLIENT_SECRET,
    DEMO_WEBHOOK_SECRET,
    MALFORMED_KINDS,
    NO_ID_KINDS,
)
from archiver.simulator.httpbase import wait_for_interrupt


def _rate(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise click.BadParameter("must be between 0 and 1")
    return value


def _loopback(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not is_loopback_host(value):
        raise click.BadParameter("the simulator listens on loopback addresses only")
    return value


def _fail_status(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, int]:
    mapping: dict[str, int] = {}
    for value in values:
        cid, sep, status = value.rpartition("=")
        if not sep or not cid or not status.isdigit() or not 100 <= int(status) <= 599:
            raise click.BadParameter(f"expected CAMPAIGN_ID=STATUS, got {value!r}")
        mapping[cid] = int(status)
    return mapping


# Bounds of the sizes: past them the simulator could not start (a port past 65535, a
# count no list or buffer can hold), or would spend its life generating campaigns.
MAX_CAMPAIGNS = 10_000
MAX_ATTEMPTS = 100_000_000
MAX_REQUEST_LOG = 10_000_000

# What the cxone personality takes; the other options belong to the campaign archive's.
CXONE_OPTIONS = frozenset({
    "api", "port", "host", "seed", "campaigns", "attempts", "rate_limit", "error_rate",
    "token_lifetime", "latency_ms",
})


@click.command(name="simulate")
@click.option("--api", type=click.Choice(["campaign-archive", "cxone"]),
              default="campaign-archive", show_default=True,
              help="Which API to serve: the campaign archive contract, or NICE CXone's "
                   "platform API (the cxone personality; it takes --port, --host, --seed, "
                   "--campaigns, --attempts as contacts per campaign, --rate-limit, "
                   "--error-rate, --token-lifetime and --latency-ms).")
@click.option("--port", type=click.IntRange(0, 65535), default=8089, show_default=True,
              help="TCP port; 0 picks a free one.")
@click.option("--host", default="127.0.0.1", show_default=True, callback=_loopback,
              help="Address to listen on; loopback only (127.0.0.1, ::1, localhost).")
@click.option("--seed", default=1, show_default=True,
              help="Seed of the generated data and of every fault's randomness.")
@click.option("--campaign", "campaign_ids", multiple=True, metavar="ID",
              help="Serve a campaign with this id (repeatable); overrides --campaigns.")
@click.option("--campaigns", type=click.IntRange(max=MAX_CAMPAIGNS), default=3,
              show_default=True, metavar="N",
              help="Number of campaigns whose ids are derived from the seed.")
@click.option("--attempts", type=click.IntRange(max=MAX_ATTEMPTS), default=2000,
              show_default=True, metavar="N",
              help="Completed attempts per campaign (generated on demand, so 500000 is fine).")
@click.option("--unanonymized-rate", default=1 / 300, show_default="1/300", callback=_rate,
              help="Share of attempts listed with anonymized=false.")
@click.option("--malformed-rate", default=0.002, show_default=True, callback=_rate,
              help="Share of malformed records (missing contactId, null outcomeCode, "
                   "string duration, ...).")
@click.option("--malformed-kind", "malformed_kinds", multiple=True,
              type=click.Choice([*MALFORMED_KINDS, *NO_ID_KINDS]), metavar="KIND",
              help="Break malformed records only this way (repeatable; default: every kind "
                   "but those without an id). Without an id: missing_id, null_id, empty_id, "
                   "empty_record ({}).")
@click.option("--rate-limit", "rate_limit", type=float, default=None, metavar="RPS",
              help="Answer 429 above this many requests per second (all calls together).")
@click.option("--no-retry-after", is_flag=True,
              help="Send 429 answers without a Retry-After header.")
@click.option("--error-rate", default=0.0, show_default=True, callback=_rate,
              help="Share of API calls answered 500, 502 or 503.")
@click.option("--token-lifetime", default=3600.0, show_default=True, metavar="SECONDS",
              help="Tokens expire after this long; later calls with them get 401.")
@click.option("--latency-ms", default=0.0, show_default=True,
              help="Delay added to every API answer.")
@click.option("--hang-rate", default=0.0, show_default=True, callback=_rate,
              help="Share of API calls whose answer is held back --hang-seconds "
                   "(the call still takes effect), so client timeouts fire.")
@click.option("--hang-seconds", default=60.0, show_default=True,
              help="How long a hung answer is held back.")
@click.option("--active", "active", multiple=True, metavar="ID",
              help="Campaign actively dialing (repeatable): archive calls get 409 until "
                   "PATCH {\"status\": \"PAUSED\"}.")
@click.option("--partial-failure-rate", default=0.0, show_default=True, callback=_rate,
              help="Per archive item chance it fails: counted in failedCount, stays listed.")
@click.option("--fail-status", "fail_status", multiple=True, metavar="ID=STATUS",
              callback=_fail_status,
              help="Answer every call about campaign ID with STATUS, e.g. 403 (repeatable).")
@click.option("--webhook-status", type=int, default=None, metavar="STATUS",
              help="Answer webhook deliveries with STATUS (503 down, 410 gone) instead of 204.")
@click.option("--client-id", default="demo", show_default=True,
              help="Client id the token call accepts.")
@click.option("--client-secret", default=DEMO_CLIENT_SECRET, show_default=True,
              help="Client secret the token call accepts (archiver refuses one shorter "
                   "than 8 characters).")
@click.option("--webhook-secret", default=DEMO_WEBHOOK_SECRET, show_default=True,
              help="Standard Webhooks secret (whsec_ + base64) the receiver checks "
                   "signatures with.")
@click.option("--request-log", type=click.IntRange(0, MAX_REQUEST_LOG), default=10_000,
              show_default=True, metavar="N",
              help="How many recent requests /_sim/requests keeps.")
def command(
    api: str,
    port: int,
    host: str,
    seed: int,
    campaign_ids: tuple[str, ...],
    campaigns: int,
    attempts: int,
    unanonymized_rate: float,
    malformed_rate: float,
    malformed_kinds: tuple[str, ...],
    rate_limit: float | None,
    no_retry_after: bool,
    error_rate: float,
    token_lifetime: float,
    latency_ms: float,
    hang_rate: float,
    hang_seconds: float,
    active: tuple[str, ...],
    partial_failure_rate: float,
    fail_status: dict[str, int],
    webhook_status: int | None,
    client_id: str,
    client_secret: str,
    webhook_secret: str,
    request_log: int,
) -> None:
    """Run the built-in CXone simulator: a strict API on loopback with switchable faults.

    It serves the token, attempts listing, archive and pause/resume calls of the
    CXone contract and answers anything off-contract with 400. Observe it at
    /_sim/stats, /_sim/ledger (how often each attempt was archived),
    /_sim/campaigns, /_sim/requests and /_sim/webhooks; change faults while it
    runs with POST /_sim/faults and a JSON object of fault fields. Runs until Ctrl-C.

    With --api cxone it serves NICE CXone's platform API instead (auth, discovery,
    completed contacts, dispositions, calling lists, skills): point a policy's
    connection.auth_url at it; it prints the tenant id and its demo credentials.
    """
    if api == "cxone":
        from archiver.simulator.cxone import cli

        # Options of the campaign-archive personality would be silently ignored: refused.
        ctx = click.get_current_context()
        flag = {param.name: param.opts[0] for param in ctx.command.params}
        ignored = sorted(
            flag[name] for name in ctx.params
            if name not in CXONE_OPTIONS
            and ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
        )
        if ignored:
            taken = ", ".join(sorted(flag[n] for n in CXONE_OPTIONS - {"api"}))
            raise click.UsageError(
                f"{', '.join(ignored)}: not an option of --api cxone (it takes {taken})"
            )

        cli.command.callback(  # type: ignore[misc]
            port=port, host=host, seed=seed, campaigns=campaigns, contacts=attempts, churn=0,
            rate_limit=rate_limit or 0.0, error_rate=error_rate, token_lifetime=token_lifetime,
            latency_ms=latency_ms,
        )
        return
    try:
        config = SimConfig(
            seed=seed, campaign_ids=list(campaign_ids), campaigns=campaigns,
            attempts_per_campaign=attempts, unanonymized_rate=unanonymized_rate,
            malformed_rate=malformed_rate, malformed_kinds=list(malformed_kinds or MALFORMED_KINDS),
            client_id=client_id, client_secret=client_secret,
            webhook_secret=webhook_secret, request_log_size=request_log,
        )
        faults = Faults(
            rate_limit_rps=rate_limit, retry_after=not no_retry_after,
            error_5xx_rate=error_rate, token_lifetime_seconds=token_lifetime,
            latency_ms=latency_ms, hang_rate=hang_rate, hang_seconds=hang_seconds,
            active_campaigns=list(active), partial_failure_rate=partial_failure_rate,
            fail_status=fail_status, webhook_status=webhook_status,
        )
        sim = Simulator(config, faults, host=host, port=port)
        sim.start()
    except ValueError as err:
        raise UsageError(str(err)) from err
    except OSError as err:
        raise UsageError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err
    try:
        _announce(sim, client_id, client_secret)
        wait_for_interrupt()
    finally:
        sim.stop()
    click.echo("simulator stopped")


def _announce(sim: Simulator, client_id: str, client_secret: str) -> None:
    base = sim.base_url
    # Scripts wait for this exact first line before they connect.
    click.echo(f"listening on {base}")
    # A demo credential of a loopback test server, shown so a run can be pointed at it.
    click.echo(
        f"token:     POST {base}/oauth/token (client_id={client_id}, client_secret={client_secret})"
    )
    click.echo(f"campaigns ({sim.config.attempts_per_campaign} attempts each):")
    for cid in sim.campaign_ids:
        click.echo(f"  {cid}")
    for name in ("stats", "ledger", "campaigns", "requests", "webhooks", "faults"):
        click.echo(f"observe:   {base}/_sim/{name}")
    click.echo(f"webhooks:  POST {sim.webhook_url}")
    click.echo("press Ctrl-C to stop")

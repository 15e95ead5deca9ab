"""``archiver plan POLICY``: a dry run against the API that sends nothing that changes state."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console

from archiver.commands._paths import PathParam
from archiver.connect import target_of
from archiver.errors import EXIT_FAILED
from archiver.governance import approval
from archiver.policy import Policy, load_policy
from archiver.report.redact import printable
from archiver.review.listing import open_listing
from archiver.review.plan import plan_policy
from archiver.review.plan_text import plan_json_text, print_plan
from archiver.settings import Settings


@click.command("plan")
@click.argument("policy_path", metavar="POLICY",
                type=PathParam(reads=True, dir_okay=False, path_type=Path))
@click.option(
    "--format", "output_format", type=click.Choice(("text", "json")), default="text",
    show_default=True, help="text: tables for people; json: one document for scripts.",
)
@click.option(
    "--base-url", metavar="URL",
    help="The API host instead of the policy's connection.base_url (wins over CXONE_BASE_URL; "
    "never read from .env).",
)
@click.pass_context
def command(
    ctx: click.Context, policy_path: Path, output_format: str, base_url: str | None
) -> None:
    """Show what `archiver run POLICY` would do, without doing it.

    Gets a token and lists every campaign's completed attempts (the only calls
    made, with the reads of what dials), decides each attempt with the policy's own filters and transforms,
    and shows per campaign and outcome how many would be archived (with their
    retention periods), skipped and quarantined, and why. A campaign whose
    `anonymized` filter says `on_violation: abort` and meets an unanonymized
    attempt shows as WOULD ABORT with the reason, and what a run would record
    of it: a run stops listing it at that first violation.

    For each campaign the run would send a batch of, says what `on_active`
    would make the run do: where the API shows what dials without acting
    (api: cxone, the campaign's running skills), whether it dials now and so
    whether the run would pause it (and resume it after), skip it or fail it;
    where the API tells only by refusing an archive call (campaign-archive:
    409), what the run would do if refused. The campaigns the run would pause
    are listed at the end ("would_pause" in json).

    Then renders one sample of every payload from the policy's templates: the
    archive request body, each webhook event and each audit line. No archive
    call, no pause or resume, no webhook and no audit line is sent or written,
    so no webhook secret is needed. CXONE_BASE_URL, CXONE_CLIENT_ID and
    CXONE_CLIENT_SECRET are read as for `run` (a host only from the
    environment or --base-url, never from a .env file).

    Last, the approval state: whether the policy's current text is approved
    (`archiver approve`), and whether a run against this target needs it.

    Exit codes: 0 planned; 1 a campaign could not be listed or the host cannot
    be reached; 78 invalid policy, missing or refused credentials.
    """
    policy = load_policy(policy_path)
    settings = Settings.load(base_url)
    approved = _approval(policy_path, policy, settings)
    with open_listing(policy, settings) as (listing, target):
        plan = plan_policy(policy, listing.pages, base_url=target, dialing_of=listing.dialing)
    if output_format == "json":
        document = json.loads(plan_json_text(plan))
        document["approval"] = approved
        click.echo(json.dumps(document, indent=2))
    else:
        print_plan(plan, Console(soft_wrap=False))
        click.echo(f"approval: {approved['summary']}")
    if plan.failed:
        ctx.exit(EXIT_FAILED)


def _approval(policy_path: Path, policy: Policy, settings: Settings) -> dict[str, object]:
    """What ``run`` would say of this policy text's approval, for the plan."""
    found = approval.state(
        policy_path, policy.sha256, allowed_signers=approval.allowed_signers_from_env()
    )
    needed = target_of(policy, settings).production
    if found.approved:
        summary = found.detail
    elif needed:
        summary = f"NOT APPROVED ({found.detail}); `archiver run` will refuse it (exit 77)"
    else:
        summary = f"not approved ({found.detail}); not needed for this target"
    return {"approved": found.approved, "needed": needed, "sha256": policy.sha256,
            "summary": printable(summary)}

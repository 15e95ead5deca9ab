"""``archiver approve POLICY``: record who approved this exact policy text."""

from __future__ import annotations

from pathlib import Path

import click

from archiver.commands._paths import PathParam
from archiver.commands._text import TEXT
from archiver.governance import approval
from archiver.policy import load_policy
from archiver.report.redact import printable


def _named(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--by names a person: empty (an unset variable, say) would fall back to git's
    user.email unseen, and record someone the command line did not name."""
    if value is not None and not value.strip():
        raise click.BadParameter(
            "is empty: name who approves, or leave --by out for git's user.email", ctx, param
        )
    return value


@click.command("approve")
@click.argument("policy_path", metavar="POLICY",
                type=PathParam(reads=True, dir_okay=False, path_type=Path))
@click.option("--by", "approver", metavar="WHO", type=TEXT, callback=_named,
              help="Who approves. Default: git's user.email in the policy's folder.")
@click.option(
    "--sign-with", "signing_key", metavar="KEY",
    type=PathParam(reads=True, dir_okay=False, exists=True, path_type=Path),
    help="Sign the approval with this SSH key (ssh-keygen -Y sign), as git signs commits.",
)
@click.option(
    "--check", is_flag=True,
    help="Write nothing: say whether the policy's current text is approved (exit 0) or not (77).",
)
@click.option(
    "--allowed-signers", metavar="FILE",
    type=PathParam(reads=True, dir_okay=False, path_type=Path), envvar="ARCHIVER_ALLOWED_SIGNERS",
    help="With --check: require a signature that verifies against this allowed-signers file "
    "(git's gpg.ssh.allowedSignersFile format). Also read from ARCHIVER_ALLOWED_SIGNERS.",
)
def command(
    policy_path: Path, approver: str | None, signing_key: Path | None, check: bool,
    allowed_signers: Path | None,
) -> None:
    """Approve POLICY: write POLICY.approved with its SHA-256, who and when.

    The approval is committed and reviewed with the policy. `archiver run`
    against a real tenant refuses a policy whose current SHA-256 has no
    approval (exit 77); any edit of the policy needs a new approval. With
    ARCHIVER_ALLOWED_SIGNERS set, `run` also requires the approval to be
    signed (--sign-with) by a key the allowed-signers file lists for the
    approver. Runs against the embedded simulator or a loopback test server
    need no approval.

    The policy must be valid (`archiver validate`) to be approved.

    Exit codes: 0 approved (or, with --check, the text is approved); 2 usage;
    77 with --check, the text is not approved; 78 invalid policy.
    """
    policy = load_policy(policy_path)
    if check:
        found = approval.require(policy_path, policy.sha256, allowed_signers=allowed_signers)
        # What the approval file names (the approver) is shown escaped, as plan shows it.
        click.echo(printable(f"{policy_path}: sha256 {policy.sha256}: {found.detail}"))
        return
    who = approver or approval.default_approver(policy_path.resolve().parent)
    written = approval.approve(policy_path, policy.sha256, by=who, signing_key=signing_key)
    signed = ", signed" if written.signature else ""
    click.echo(printable(
        f"approved {policy_path} (sha256 {policy.sha256}) as {who}{signed}: "
        f"wrote {approval.approval_path(policy_path)}; commit it with the policy"
    ))

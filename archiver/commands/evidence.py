"""``archiver evidence RUN_ID --out FILE`` and ``archiver evidence verify FILE``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from archiver.audit import digest
from archiver.clock import now
from archiver.commands._paths import PathParam
from archiver.commands._state import state_options
from archiver.commands._text import RUN_ID
from archiver.commands.runs import find_run, resolve_state_dir
from archiver.errors import EXIT_FAILED, StateError
from archiver.governance import approval, evidence
from archiver.policy import load_policy
from archiver.stages import registry
from archiver.state.store import Store


class EvidenceGroup(click.Group):
    """`evidence RUN_ID ...` builds a bundle; `evidence verify FILE ...` checks one."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in self.commands:
            return super().resolve_command(ctx, args)
        # Named by what stands in its place, so that its usage line and its errors'
        # hint say `archiver evidence RUN_ID ...`: there is no `evidence create`.
        return _RUN_ID, create, args


_RUN_ID = "RUN_ID"


class _CreateCommand(click.Command):
    """`evidence RUN_ID --out FILE`: the run id is the command's place in the usage line,
    so it is not listed again after the options."""

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return [piece for piece in super().collect_usage_pieces(ctx) if piece != _RUN_ID]


@click.group("evidence", cls=EvidenceGroup, invoke_without_command=False)
def command() -> None:
    """Bundle one run's evidence in one file, or check such a bundle offline.

    \b
    archiver evidence RUN_ID --out FILE [--state DIR | --policy FILE]
    archiver evidence verify FILE --public-key PEM

    A bundle holds the run report, the policy text that ran and its approval,
    the policy's hold files, and for each audit log the lines the run's signed digest covers, that
    digest and the one before it. `verify` needs only the bundle and the
    public key: no state store, no network, no repository. Runs must have been
    signed (ARCHIVER_SIGNING_KEY) for their evidence to be bundled.

    Each form's options: `archiver evidence RUN_ID --help`, `archiver evidence
    verify --help`.
    """


@click.command("create", cls=_CreateCommand)
@click.argument("run_id", type=RUN_ID)
@click.option("--out", "out", required=True,
              type=PathParam(reads=False, dir_okay=False, path_type=Path),
              help="Where to write the bundle (JSON).")
@state_options
def create(run_id: str, out: Path, state_dir: Path | None, policy_path: Path | None) -> None:
    """Write the evidence bundle of run RUN_ID (a unique prefix is enough) to --out."""
    store = Store.open_existing(resolve_state_dir(state_dir, policy_path), read_only=True)
    try:
        run = find_run(store.runs.starting_with(run_id), run_id)
    finally:
        store.close()
    report: dict[str, Any] | None = run["report"]
    if report is None:
        raise StateError(f"run {run['id']} has no report (status: {run['status']})")
    policy_part = report.get("policy") or {}
    if not isinstance(report.get("run_id"), str) or not isinstance(policy_part.get("sha256"), str):
        raise StateError(f"the report of run {run['id']} in the state store {store.where} names "
                         "no run id or policy SHA-256: not a report archiver wrote; nothing "
                         "to bundle")
    path = policy_part.get("path")
    if not path or not isinstance(path, str):
        raise StateError(f"run {run['id']} ran a policy without a file; nothing to bundle")
    # The audit logs are where the policy file says now (its audit_log paths rarely move).
    policy = load_policy(Path(path)) if Path(path).is_file() else None
    logs = [] if policy is None else [
        policy.resolve(written, what="audit log") for written in registry.audit_logs(policy)
    ]
    holds = [] if policy is None else [
        (written, policy.resolve(written, what="hold file")) for written in policy.holds
    ]
    bundle = evidence.build(report, logs, created_at=now(), holds=holds)
    evidence.write(bundle, out)
    parts = len(bundle["audit"])
    click.echo(f"wrote {out}: run {report['run_id']}, policy {bundle['policy']['sha256'][:12]} "
               f"from {bundle['policy']['from']}, {parts} audit log(s)")


@command.command("verify")
@click.argument("file", type=PathParam(reads=True, dir_okay=False, exists=True, path_type=Path))
@click.option("--public-key", "public_key", required=True,
              type=PathParam(reads=True, dir_okay=False, exists=True, path_type=Path),
              help="The Ed25519 public key (PEM) of the key the runs were signed with.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def verify(file: Path, public_key: Path, fmt: str) -> None:
    """Check the evidence bundle FILE offline; name each part that does not match.

    Each line is OK (checked against the signed audit lines or a signature), FAIL
    (does not match them: the field and both values are named) or NOTE (shown, but
    nothing signed vouches for it). ARCHIVER_ALLOWED_SIGNERS checks the approval's
    SSH signature, as `run` does. Exit 0 when no line is FAIL, 1 when one is.
    """
    bundle = evidence.read(file)
    checks = evidence.verify(bundle, digest.load_public_key(public_key),
                             allowed_signers=approval.allowed_signers_from_env())
    ok = all(c.ok for c in checks)
    notes = sum(1 for c in checks if c.ok and not c.vouched)
    if fmt == "json":
        click.echo(json.dumps({"file": str(file), "ok": ok,
                               "checks": [{"part": c.part, "ok": c.ok, "vouched": c.vouched,
                                           "detail": c.detail} for c in checks]}))
    else:
        for c in checks:
            mark = "FAIL" if not c.ok else "OK  " if c.vouched else "NOTE"
            click.echo(f"{mark} {c.part}: {c.detail}")
        if not ok:
            click.echo(f"{file}: DOES NOT VERIFY")
        elif notes:
            click.echo(f"{file}: what is signed verifies; the {notes} NOTE line(s) above are "
                       "not vouched for by anything signed")
        else:
            click.echo(f"{file}: verified")
    if not ok:
        raise click.exceptions.Exit(EXIT_FAILED)

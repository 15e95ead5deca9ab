"""``archiver diff OLD NEW``: what a policy change alters, attempt by attempt."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from archiver.backends.catalog import CXONE
from archiver.commands._paths import PathParam, refuse_unusable
from archiver.errors import EXIT_FAILED, UsageError
from archiver.policy import load_policy
from archiver.policy.model import Policy
from archiver.review.diff import diff_policies
from archiver.review.diff_text import diff_json_text, print_diff
from archiver.review.fixtures import (
    DEFAULT_COUNT,
    DEFAULT_SEED,
    Fixtures,
    from_embedded_simulator,
    from_file,
    generated_for,
)

STDIN = "-"
MAX_COUNT = 100_000


def _given(ctx: click.Context, param: click.Parameter, value: str) -> str:
    refuse_unusable(value, param, ctx, file=True, reads=value != STDIN)
    return value


@click.command("diff")
@click.argument("old", metavar="OLD", callback=_given)
@click.argument("new", metavar="NEW", callback=_given)
@click.option("--fixtures", "fixtures_path",
              type=PathParam(reads=True, dir_okay=False, path_type=Path),
              help="Compare on these listing records: a YAML or JSON list of records as the "
                   "API lists them, or the cases of a NAME.test.yaml.")
@click.option("--simulator", is_flag=True,
              help="List the attempts from the embedded simulator over HTTP instead of "
                   "generating them in-process (for campaign-archive, the same records as "
                   "the default --seed).")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True,
              help="Seed of the generated attempts (default: the embedded simulator's, so "
                   "both give the same records).")
@click.option("--count", type=click.IntRange(1, MAX_COUNT), default=DEFAULT_COUNT,
              show_default=True, help="Generated attempts per campaign.")
@click.option("--format", "output_format", type=click.Choice(("text", "json")), default="text",
              show_default=True, help="text: counts and a table; json: every change, for scripts.")
@click.option("--max-rows", type=click.IntRange(0), default=50, show_default=True,
              help="Changed attempts listed in text output.")
@click.option("--exit-code", is_flag=True,
              help="Exit 1 when some attempt changes (like git diff --exit-code).")
@click.pass_context
def command(
    ctx: click.Context, old: str, new: str, fixtures_path: Path | None, simulator: bool,
    seed: int, count: int, output_format: str, max_rows: int, exit_code: bool,
) -> None:
    """Show the attempts whose decision or retention changes from policy OLD to NEW.

    Both policies decide the same attempts with their own filters and
    transforms; every attempt whose decision (archive, skip, quarantine,
    abort), retention period or skip/quarantine reason differs is listed, with
    counts by kind of change (e.g. `archive->skip`, `retention 365->730`).

    The attempts are, by default, generated in-process for every campaign of
    either policy, shaped as the policies' backend lists them (no request is
    made): campaign-archive attempts from the simulator's seeded generator;
    cxone contacts whose dispositions are the CXone simulator's and every
    outcome either policy names. Policies of different backends are compared
    only on --fixtures FILE, which compares on given records; --simulator
    lists them from the embedded simulator.

    An outcome either policy names that no compared attempt carries is
    reported as a warning: a change to it cannot show on these attempts.

    OLD or NEW may be `-` to read that policy from standard input, e.g.
    `git show main:policies/x.yaml | archiver diff - policies/x.yaml`. Relative
    paths inside a policy read from standard input (templates, audit log)
    resolve against the current folder, so run it from the folder the policy
    lives in.

    Exit codes: 0 whether or not something changes (1 with --exit-code when
    something does); 2 usage; 78 invalid policy.
    """
    if old == STDIN and new == STDIN:
        raise UsageError("only one of OLD and NEW can be read from standard input")
    for given_path in (old, new):
        if given_path != STDIN and Path(given_path).is_dir():
            # As `plan` answers a folder: a usage error (2), not an invalid policy (78).
            raise UsageError(f"{given_path} is a folder: diff compares two policy files")
    if fixtures_path is not None and simulator:
        raise UsageError("--fixtures and --simulator cannot be used together")
    # Options that would be silently ignored are refused instead.
    given = {
        name for name in ("seed", "count")
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    }
    if fixtures_path is not None and given:
        raise UsageError(f"--{' and --'.join(sorted(given))} cannot be used with --fixtures")
    if simulator and "seed" in given:
        raise UsageError("--seed cannot be used with --simulator: the embedded simulator's seed is fixed")
    old_policy, new_policy = load_policy(old), load_policy(new)
    if simulator and "count" in given and new_policy.connection.api == CXONE:
        raise UsageError("--count cannot be used with --simulator on a cxone policy: the "
                         "CXone simulator's tenant has a fixed number of contacts")
    fixtures = _fixtures(old_policy, new_policy, fixtures_path, simulator, seed, count)
    result = diff_policies(
        old_policy, new_policy, fixtures, old_name=_name(old), new_name=_name(new)
    )
    if output_format == "json":
        click.echo(diff_json_text(result))
    else:
        print_diff(result, Console(soft_wrap=False), max_rows=max_rows)
    if exit_code and result.changes:
        ctx.exit(EXIT_FAILED)


def _name(arg: str) -> str:
    return "<stdin>" if arg == STDIN else arg


def _fixtures(
    old: Policy, new: Policy, path: Path | None, simulator: bool, seed: int, count: int
) -> Fixtures:
    if path is not None:
        return from_file(path)
    if simulator:
        return from_embedded_simulator(old, new, count=count)
    return generated_for(old, new, count=count, seed=seed)

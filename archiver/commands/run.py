"""``archiver run``: run policies end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from archiver.connect import connect
from archiver.engine.registry import BuildContext, build_sinks
from archiver.engine.runner import run_policy
from archiver.policy import load_policy
from archiver.report.summary import print_summary

STATE_DIR_NAME = ".archiver"


def default_state_dir(policy_path: Path) -> Path:
    return policy_path.resolve().parent / STATE_DIR_NAME


@click.command("run")
@click.argument("policies", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--state", "state_dir", type=click.Path(file_okay=False, path_type=Path),
    help="State folder (SQLite store and run lock). Default: a .archiver/ folder beside the policy.",
)
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the JSON run report here (schema: schemas/run-report.schema.json).")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors and the final summary line.")
def command(policies: tuple[Path, ...], state_dir: Path | None, report_path: Path | None, quiet: bool) -> None:
    """Archive the completed attempts POLICY declares, then report.

    Lists every campaign completely, decides each attempt (archive with a
    retention period, skip, quarantine), posts archive batches, delivers the
    warehouse webhooks and writes the audit log. Safe to kill at any moment:
    running it again resumes where it stopped and never archives an attempt
    twice. Two runs on the same state folder at once: the second refuses.

    Exit codes: 0 every listed attempt reached a final state other than failed;
    1 some failed (a later run retries them); 2 usage; 75 the state folder is
    in use by another run; 78 invalid policy or missing secret.
    """
    exit_code = 0
    for path in policies:
        policy = load_policy(path)
        with connect(policy) as conn:
            ctx = BuildContext(policy=policy, secrets=conn.secrets, webhook_url=conn.webhook_url)
            sinks = build_sinks(ctx)
            result = run_policy(
                policy,
                client=conn.client,
                sinks=sinks,
                state_dir=state_dir or default_state_dir(path),
            )
        print_summary(result.report, quiet=quiet)
        if report_path is not None:
            _write_json(report_path, result.report)
        exit_code = max(exit_code, result.exit_code)
    raise SystemExit(exit_code)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)

"""The ``archiver`` command line: parses arguments and dispatches, nothing more.

Each verb lives in ``archiver/commands/<verb>.py`` and exposes a click command
named ``command``. Errors derived from :class:`archiver.errors.ArchiverError`
become a message on stderr and an exit code here, in one place.
"""

from __future__ import annotations

import gc
import importlib
import signal
import sys
from types import FrameType
from typing import Any

import click

from archiver import __version__
from archiver.errors import EXIT_INTERRUPTED, EXIT_USAGE, ArchiverError, PolicyError
from archiver.report.redact import shown

# Order is the order `archiver --help` lists them in.
VERBS = (
    "run", "validate", "plan", "test", "diff", "approve", "audit", "evidence", "runs",
    "simulate", "schema",
)


# What `archiver --help` says of each verb: its own help's first sentence, kept here so
# that listing the verbs imports none of them (together they take most of a second).
# tests/test_cli.py checks every line against the command's own help.
SUMMARIES = {
    "run": "Archive the completed attempts POLICY declares, then report.",
    "validate": "Check policies (files, or folders of *.yaml and *.yml) against the schema "
                "and the semantic rules.",
    "plan": "Show what `archiver run POLICY` would do, without doing it.",
    "test": "Run the policy test cases in PATH (test files, policies, or folders).",
    "diff": "Show the attempts whose decision or retention changes from policy OLD to NEW.",
    "approve": "Approve POLICY: write POLICY.approved with its SHA-256, who and when.",
    "audit": "Inspect the audit log a policy's `audit_log` sink writes.",
    "evidence": "Bundle one run's evidence in one file, or check such a bundle offline.",
    "runs": "Past runs from the state store, newest first, with their outcome and counts.",
    "simulate": "Run the built-in CXone simulator: a strict API on loopback with switchable "
                "faults.",
    "schema": "Print the policy JSON Schema (2020-12), byte for byte as shipped.",
}


class ArchiverGroup(click.Group):
    """Loads a verb's module only when it runs (start-up time matters to short runs),
    and turns ArchiverError into a one-line message and its exit code."""

    # Set by main(), for a process that runs one command and exits: what loading a
    # verb created (modules, classes, validators: tens of thousands of objects)
    # lives until exit, so it is moved out of the garbage collector's sight. A full
    # collection during a run then costs a few ms instead of tens, and exit skips it.
    # The collector is turned on here too: the entry point keeps it off during start-up.
    freeze_after_load = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(VERBS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The verbs and what each does, as click lists them, without loading any."""
        verbs = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(v) for v in verbs)
        with formatter.section("Commands"):
            formatter.write_dl([
                (v, click.Command(v, help=SUMMARIES[v]).get_short_help_str(limit)) for v in verbs
            ])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in VERBS:
            return None
        module = importlib.import_module(f"archiver.commands.{cmd_name}")
        command: click.Command = module.command
        if self.freeze_after_load:
            gc.freeze()
            gc.enable()
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            # Caught here: click's own handler would print "Aborted!" and exit 1, the
            # code of a run with failed attempts.
            click.echo("archiver: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except PolicyError as err:
            for diag in err.diagnostics:
                click.echo(diag.format(), err=True)
            ctx.exit(err.exit_code)
        except ArchiverError as err:
            click.echo(shown(f"archiver: error: {err}"), err=True)
            for line in err.details:
                click.echo(shown(line), err=True)
            ctx.exit(err.exit_code)


@click.group(cls=ArchiverGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="archiver")
def cli() -> None:
    """Archive completed NICE CXone contact attempts as a reviewed YAML policy declares.

    Start with `archiver validate policies/`, look at `archiver plan POLICY`,
    then `archiver run POLICY`. Exit codes: 0 every listed attempt reached a
    final state other than failed, 1 some failed, 2 usage error, 74 a state,
    audit log, report or metrics file cannot be written (disk full, read-only;
    the message names it), 75 another run holds the state store, 77 the policy
    has no valid approval for a real tenant, 78 invalid policy, missing
    secret or refused credentials, 130 interrupted (Ctrl-C) outside a run (an
    interrupted run stops cleanly and exits 1: run it again to resume).
    """


def _terminated(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (a service manager, a CronJob's deadline) stops a command as Ctrl-C does:
    # one line and exit 130, not a silent death with 143. A run installs its own
    # handler while it runs, which stops it cleanly instead (archiver.engine.runner).
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    ArchiverGroup.freeze_after_load = True
    try:
        cli.main(prog_name="archiver", standalone_mode=True)
    except click.exceptions.Exit as exc:  # pragma: no cover - click handles this itself
        sys.exit(exc.exit_code)
    sys.exit(EXIT_USAGE)  # pragma: no cover - cli.main always exits

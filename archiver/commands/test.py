"""``archiver test PATH...``: run policy test cases kept beside policies."""

from __future__ import annotations

from pathlib import Path

import click

from archiver.commands._paths import PathParam
from archiver.errors import EXIT_FAILED
from archiver.review.test_text import report
from archiver.review.testrun import find_test_files, run_test_file


@click.command("test")
@click.argument("paths", nargs=-1, required=True, type=PathParam(reads=True, path_type=Path))
@click.pass_context
def command(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Run the policy test cases in PATH (test files, policies, or folders).

    A policy NAME.yaml keeps its tests beside it in NAME.test.yaml: fixture
    attempts as the API lists them (camelCase, so malformed records can be
    tested) and the decision each must get: archive with retention_days,
    skip, quarantine or abort with a reason (matched as a substring), and
    optionally fields of the archive body, webhook event and audit record it
    would produce. The format is described by schemas/policy-test.schema.json
    and in archiver/review/testfile.py.

    A policy given as PATH runs the test file beside it; a folder runs every
    *.test.yaml under it. Nothing is sent anywhere: decisions come from the
    policy's own filters and transforms, payloads from its own templates.

    Prints a line per case (PASSED or FAILED), what differs for each failure,
    and `N passed, N failed`. Exit codes: 0 every case passed; 1 a case failed,
    or a test file or its policy is invalid or has no cases.
    """
    files, errors = find_test_files(paths)
    results = [run_test_file(path) for path in files]
    _, failed, error_count = report(results, errors, click.echo)
    if failed or error_count:
        ctx.exit(EXIT_FAILED)

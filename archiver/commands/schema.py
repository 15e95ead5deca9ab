"""``archiver schema``: print the JSON Schemas archiver publishes, for editors and other tools."""

from __future__ import annotations

import json
from importlib import resources

import click

# Name -> (package holding the packaged copy, file). Each is also shipped as
# schemas/<file>; a test keeps the two copies identical.
SCHEMAS: dict[str, tuple[str, str]] = {
    "policy": ("archiver.policy", "policy.schema.json"),
    "policy-test": ("archiver.review", "policy-test.schema.json"),
    "run-report": ("archiver.report", "run-report.schema.json"),
}


def schema_text(name: str) -> str:
    """The packaged schema ``name``, byte for byte; the policy schema with the options of
    every installed stage plugin merged in (byte for byte the shipped file without any)."""
    if name == "policy":
        from archiver.policy._stage_schema import schema_text as policy_text

        return policy_text()
    package, file = SCHEMAS[name]
    return resources.files(package).joinpath(file).read_text("utf-8")


@click.command("schema")
@click.option(
    "--all", "print_all", is_flag=True,
    help="Print every schema (policy, policy-test, run-report) as one JSON object keyed "
         "by name.",
)
def command(print_all: bool) -> None:
    """Print the policy JSON Schema (2020-12), byte for byte as shipped.

    With stage plugins installed, their options (each plugin's options model) are
    merged in, so an editor pointed at the output checks them too.

    With --all: one JSON object whose keys are the schema names `policy`,
    `policy-test` (test files) and `run-report` (`run --report`), each value
    the schema shipped as schemas/NAME.schema.json.
    """
    if not print_all:
        # The shipped file, not a re-serialisation of SCHEMA, so the output is identical to
        # schemas/policy.schema.json and editors' copies can be compared byte for byte.
        click.echo(schema_text("policy"), nl=False)
        return
    every = {name: json.loads(schema_text(name)) for name in SCHEMAS}
    click.echo(json.dumps(every, indent=2, ensure_ascii=False))

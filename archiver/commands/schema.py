"""``archiver schema``: print the policy JSON Schema, for editors and other tools."""

from __future__ import annotations

from importlib import resources

import click


@click.command("schema")
def command() -> None:
    """Print the policy JSON Schema (2020-12), byte for byte as shipped."""
    # The shipped file, not a re-serialisation of SCHEMA, so the output is identical to
    # schemas/policy.schema.json and editors' copies can be compared byte for byte.
    text = resources.files("archiver.policy").joinpath("policy.schema.json").read_text("utf-8")
    click.echo(text, nl=False)

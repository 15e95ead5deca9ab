"""Filter ``dnc_list``: attempts whose contact is on a do-not-call list are skipped.

The list is a CSV file inside the policy's repository, reviewed with the policy; its
``column`` holds contact ids. A skipped attempt stays where it is, with the reason
recorded, for the team that handles do-not-call requests.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from archiver.engine.backend import AttemptRecord, RecordField
from archiver.engine.building import BuildContext
from archiver.engine.records import Decision
from archiver.errors import ConfigError
from archiver.policy.paths import OutsideRepository
from archiver.stages.descriptor import CheckContext, Finding, StageType


class DncOptions(BaseModel):
    """Options of the ``dnc_list`` filter."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(description="The CSV file, relative to the policy file.")
    column: str = Field(default="contact_id", description="The column holding contact ids.")


def read_list(path: Path, column: str) -> frozenset[str]:
    """The contact ids of the CSV at ``path``; ConfigError if it has no such column."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or column not in reader.fieldnames:
            raise ConfigError(f"{path.name}: no column `{column}`")
        return frozenset(row[column].strip() for row in reader if row[column].strip())


class DncList:
    name = "dnc_list"

    def __init__(self, contacts: frozenset[str]) -> None:
        self.contacts = contacts

    def check(self, attempt: AttemptRecord) -> Decision | None:
        if attempt.contact_id in self.contacts:
            return Decision(attempt_id=attempt.id, kind="skip",
                            reason="contact is on the do-not-call list", attempt=attempt)
        return None


def _build(options: DncOptions, ctx: BuildContext) -> DncList:
    contacts = read_list(ctx.path(options.path, what="do-not-call list"), options.column)
    ctx.log.debug("do-not-call list: %d contact(s)", len(contacts))
    return DncList(contacts)


def _check(options: DncOptions, ctx: CheckContext) -> Iterable[Finding]:
    try:
        path = ctx.confine(options.path, "do-not-call list")
    except OutsideRepository as err:
        yield Finding(("path",), str(err))
        return
    if not path.is_file():
        yield Finding(("path",), f"do-not-call list `{ctx.show(options.path)}` not found")
        return
    try:
        read_list(path, options.column)
    except (ConfigError, UnicodeDecodeError, csv.Error) as err:
        yield Finding(("column",), f"do-not-call list `{ctx.show(options.path)}`: {err}")


def _reads(options: DncOptions) -> frozenset[RecordField]:
    return frozenset({"contact_id"})


STAGE = StageType(
    kind="filter", name="dnc_list", options=DncOptions, factory=_build,
    summary="skip attempts whose contact is on a do-not-call list (a CSV in the repository)",
    reads=_reads, check=_check,
)

"""Legal holds: attempts, contacts or whole campaigns that must not be archived.

A hold file is YAML kept in the policy's repository and listed under the policy's
``holds:``::

    case: LIT-2026-114
    placed_by: legal@example.com
    until: 2027-06-30              # optional; the hold ends after this day (UTC)
    attempts: [att-000-0000017]    # attempt ids (the record's own id)
    contacts: []                   # contact ids
    campaigns: []                  # whole campaigns

A hold file is read with the rules of a policy (``archiver.policy._yaml``): a duplicate
key, an anchor or an alias is refused rather than resolved (a second ``attempts:`` would
otherwise silently replace the first list), ``until`` must be a real day written
``YYYY-MM-DD``, and every problem names the hold file, its line and column.

A held attempt is never archived: it is recorded ``held`` with the case reference,
and a later run archives it once the hold has ended. Hold files are read again
before every batch (when they changed), so a hold placed during a run takes effect
at the next batch.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from archiver.errors import ConfigError, Diagnostic
from archiver.policy import _codes as codes
from archiver.policy._document import Positions
from archiver.policy._yaml import parse
from archiver.regular_file import read_regular

MAX_HOLD_FILE_BYTES = 4 * 1024 * 1024
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_FIELDS = "`case`, `placed_by` and optionally `until`, `attempts`, `contacts`, `campaigns`"


def _day(value: object) -> object:
    """``until`` as written: text naming a real day, ``YYYY-MM-DD``. Anything else is
    refused, never read loosely: a number would be taken for seconds since 1970, a hold
    that ended long ago."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        raise PydanticCustomError("hold_day", "must be a day written YYYY-MM-DD, like 2027-06-30")
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise PydanticCustomError("hold_day", "{value} is not a day: {why}",
                                  {"value": value, "why": str(err)}) from None


class HoldFile(BaseModel):
    """One hold file as written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case: str = Field(min_length=1)
    placed_by: str = Field(min_length=1)
    until: Annotated[date | None, BeforeValidator(_day)] = None
    attempts: tuple[str, ...] = ()
    contacts: tuple[str, ...] = ()
    campaigns: tuple[str, ...] = ()

    def active(self, today: date) -> bool:
        return self.until is None or today <= self.until


@dataclass(frozen=True, slots=True)
class Hold:
    """Why an attempt is held: the case, and the file that holds it."""

    case: str
    file: str

    @property
    def reason(self) -> str:
        return f"legal hold {self.case} ({self.file})"


def read_hold_file(path: Path, shown: str) -> HoldFile:
    """The hold file at ``path``; ConfigError naming ``shown`` (as the policy spells it)."""
    try:
        data = read_regular(path, MAX_HOLD_FILE_BYTES)
        if len(data) > MAX_HOLD_FILE_BYTES:
            raise ConfigError(f"hold file {shown} is larger than "
                              f"{MAX_HOLD_FILE_BYTES // (1024 * 1024)} MiB")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"hold file {shown} does not exist") from None
    except OSError as err:
        raise ConfigError(f"cannot read hold file {shown}: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"cannot read hold file {shown}: {err}") from err
    return parse_hold_file(text, shown)


def parse_hold_file(text: str, shown: str) -> HoldFile:
    """The hold file whose text is ``text``; ConfigError naming ``shown`` and the line of
    its first problem (the others, if any, as its details)."""
    parsed = parse(text, shown, "hold file")
    if isinstance(parsed, list):
        raise _refused(parsed)
    try:
        return HoldFile.model_validate(parsed.data)
    except ValidationError as err:
        errors = err.errors(include_url=False, include_input=False)
        raise _refused([_at(error, parsed.positions, shown) for error in errors]) from None


def _at(error: ErrorDetails, positions: Positions, shown: str) -> Diagnostic:
    path = tuple(error["loc"])
    # A key that is not allowed is pointed at by its key, any other problem by its value.
    spot = positions.key(path) if error["type"] == "extra_forbidden" else positions.value(path)
    message = (f"`{'.'.join(str(p) for p in path)}`: {error['msg']}" if path
               else f"a hold file is a mapping of {_FIELDS}")
    return Diagnostic(shown, spot.line, spot.col, codes.BAD_HOLD_FILE, message)


def _refused(problems: list[Diagnostic]) -> ConfigError:
    lines = [f"hold file {problem.format()}" for problem in problems]
    return ConfigError(lines[0]).with_details(lines[1:])


class HoldSet:
    """The holds of a policy, re-read from disk when a file changes.

    Safe to share between threads: campaigns check holds concurrently.
    """

    def __init__(self, files: Sequence[tuple[Path, str]], *,
                 today: date | None = None) -> None:
        self._files = list(files)  # (resolved path, as the policy spells it)
        self._today = today
        self._lock = threading.Lock()
        self._stamps: tuple[tuple[int, int], ...] | None = None
        self._attempts: dict[str, Hold] = {}
        self._contacts: dict[str, Hold] = {}
        self._campaigns: dict[str, Hold] = {}
        self.refresh()

    def __bool__(self) -> bool:
        return bool(self._files)

    def _stamp(self) -> tuple[tuple[int, int], ...]:
        stamps = []
        for path, _ in self._files:
            try:
                info = path.stat()
            except OSError:
                stamps.append((-1, -1))
                continue
            stamps.append((info.st_mtime_ns, info.st_size))
        return tuple(stamps)

    def refresh(self) -> bool:
        """Read the hold files again if any changed; True when the holds were re-read."""
        with self._lock:
            stamp = self._stamp()
            if stamp == self._stamps:
                return False
            today = self._today or datetime.now(UTC).date()
            attempts: dict[str, Hold] = {}
            contacts: dict[str, Hold] = {}
            campaigns: dict[str, Hold] = {}
            for path, shown in self._files:
                held = read_hold_file(path, shown)
                if not held.active(today):
                    continue
                hold = Hold(held.case, shown)
                for ids, into in ((held.attempts, attempts), (held.contacts, contacts),
                                  (held.campaigns, campaigns)):
                    for item in ids:
                        into.setdefault(item, hold)
            self._attempts, self._contacts, self._campaigns = attempts, contacts, campaigns
            self._stamps = stamp
            return True

    def match(self, campaign_id: str, attempt_id: str, contact_id: str | None) -> Hold | None:
        """The hold on this attempt, if any (by attempt, then contact, then campaign)."""
        with self._lock:
            return (
                self._attempts.get(attempt_id)
                or (self._contacts.get(contact_id) if contact_id else None)
                or self._campaigns.get(campaign_id)
            )

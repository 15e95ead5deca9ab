"""Legal holds: attempts, contacts or whole campaigns that must not be archived.

A hold file is YAML kept in the policy's repository and listed under the policy's
``holds:``::

    case: LIT-2026-114
    placed_by: legal@example.com
    until: 2027-06-30              # optional; the hold ends after this day (UTC)
    attempts: [att-000-0000017]    # attempt ids (the record's own id)
    contacts: []                   # contact ids
    campaigns: []                  # whole campaigns

A held attempt is never archived: it is recorded ``held`` with the case reference,
and a later run archives it once the hold has ended. Hold files are read again
before every batch (when they changed), so a hold placed during a run takes effect
at the next batch.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from archiver.errors import ConfigError

MAX_HOLD_FILE_BYTES = 4 * 1024 * 1024


class HoldFile(BaseModel):
    """One hold file as written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case: str = Field(min_length=1)
    placed_by: str = Field(min_length=1)
    until: date | None = None
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
        if path.stat().st_size > MAX_HOLD_FILE_BYTES:
            raise ConfigError(f"hold file {shown} is larger than "
                              f"{MAX_HOLD_FILE_BYTES // (1024 * 1024)} MiB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"hold file {shown} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read hold file {shown}: {err}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"hold file {shown}{where}: not valid YAML") from None
    try:
        return HoldFile.model_validate(data)
    except ValidationError as err:
        first = err.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "(file)"
        raise ConfigError(f"hold file {shown}: `{field}`: {first['msg']}") from None


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

"""Where a state store lives: a state folder (SQLite) or a PostgreSQL database.

``--state DIR`` names a folder, ``--state postgresql://...`` a database; without
``--state``, ``ARCHIVER_STATE_URL`` (from the environment only, never from ``.env``:
it names a host to connect to) names the database, else the folder beside the policy
is used. A URL is shown without its password wherever it is printed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from archiver.errors import ConfigError
from archiver.state.folder import default_state_dir

STATE_URL_ENV = "ARCHIVER_STATE_URL"
SCHEMES = ("postgresql", "postgres")
_SECRET_PARAMS = {"password", "sslpassword"}


@dataclass(frozen=True, slots=True)
class PostgresUrl:
    """A PostgreSQL connection URL (libpq's form); ``str()`` leaves out the password."""

    dsn: str = field(repr=False)

    def __str__(self) -> str:
        parts = urlsplit(self.dsn)
        userinfo, at, host = parts.netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}@{host}" if at else host
        kept = [p for p in parts.query.split("&") if p and p.partition("=")[0] not in _SECRET_PARAMS]
        return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{'&'.join(kept)}" if kept else "")

    def __repr__(self) -> str:
        return f"PostgresUrl({str(self)!r})"

    @property
    def secrets(self) -> list[str]:
        """The password (and TLS key password) in the URL, to be masked in every log line."""
        parts = urlsplit(self.dsn)
        found = [v for k, v in parse_qsl(parts.query) if k in _SECRET_PARAMS]
        if parts.password:
            # As written (percent-encoded) and as libpq reads it.
            found += [parts.password, unquote(parts.password)]
        return found


StateLocation = Path | PostgresUrl


def is_url(text: str) -> bool:
    return text.partition("://")[0].lower() in SCHEMES and "://" in text


def parse(text: str) -> StateLocation:
    """``--state``'s value: a PostgreSQL URL or a folder."""
    if is_url(text):
        return PostgresUrl(text)
    if "://" in text:
        scheme = text.partition("://")[0]
        raise ConfigError(
            f"--state {scheme}://...: not a state store this archiver knows; "
            "give a folder or a postgresql:// URL"
        )
    return Path(text)


def from_env() -> PostgresUrl | None:
    """``ARCHIVER_STATE_URL`` when set (and not empty)."""
    value = os.environ.get(STATE_URL_ENV, "").strip()
    if not value:
        return None
    if not is_url(value):
        raise ConfigError(f"{STATE_URL_ENV} must be a postgresql:// URL")
    return PostgresUrl(value)


def default_for(policy_path: Path) -> StateLocation:
    """Where a policy's state lives without ``--state``: ``ARCHIVER_STATE_URL``, else
    the ``.archiver/`` folder beside the policy."""
    return from_env() or default_state_dir(policy_path)


def describe(location: StateLocation) -> str:
    """``state folder DIR`` or ``state store postgresql://...`` (no password)."""
    if isinstance(location, PostgresUrl):
        return f"state store {location}"
    return f"state folder {location}"


def exists(location: StateLocation) -> bool:
    """Whether a run has used ``location`` (a store is there to read)."""
    if isinstance(location, PostgresUrl):
        from archiver.state.postgres import store_exists

        return store_exists(location)
    from archiver.state.sqlite import exists as folder_has_store

    return folder_has_store(location)


def run_lock(location: StateLocation) -> AbstractContextManager[object]:
    """What a run holds for its whole life: the state folder's ``flock`` (a second run
    on the folder exits 75). A PostgreSQL store is shared: runs lock campaigns instead
    (``Store.try_lock_campaign``), so nothing is held for the whole store."""
    if isinstance(location, PostgresUrl):
        return nullcontext()
    from archiver.state.lock import RunLock

    return RunLock(location / "run.lock")


def secrets_of(location: StateLocation | None) -> Iterator[str]:
    if isinstance(location, PostgresUrl):
        yield from location.secrets

"""Typed policy objects. Built only from documents that passed the JSON Schema.

Nothing after loading looks at raw YAML dicts: the engine, stages and commands
receive these frozen models. Defaults here mirror the defaults documented in
``policy.schema.json`` (a test keeps the two in step).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from archiver.policy.paths import confine, repository_root

EMBEDDED = "embedded"
CAMPAIGN_ARCHIVE: Final = "campaign-archive"
CXONE: Final = "cxone"
# CXone's login and discovery host (a gov cloud or a test server differ).
DEFAULT_AUTH_URL = "https://cxone.niceincontact.com"
DEFAULT_API_VERSION = "v34.0"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Api = Literal["campaign-archive", "cxone"]


class Connection(_Model):
    # The API the policy speaks (archiver.backends): each has its own wire format.
    api: Api = CAMPAIGN_ARCHIVE
    # Required for campaign-archive: a policy says which API it runs against, so a
    # simulator run never passes for a production one (``embedded`` is the built-in
    # simulator). Optional for cxone, whose API host is discovered from tenant_id.
    base_url: str | None = None
    tenant_id: str | None = None  # cxone
    auth_url: str = DEFAULT_AUTH_URL  # cxone
    api_version: str = DEFAULT_API_VERSION  # cxone
    timeout_seconds: float = Field(default=30.0, gt=0)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    max_requests_per_second: float = Field(default=10.0, gt=0)
    max_in_flight: int = Field(default=4, ge=1, le=64)


OnActive = Literal["pause_and_resume", "skip", "fail"]


Action = Literal["export", "retire"]


class Campaign(_Model):
    id: str
    on_active: OnActive = "fail"
    # cxone: export keeps the archive in the sinks only; retire also removes the
    # archived attempts' prospects from their calling list. None on campaign-archive.
    action: Action | None = None


SourceType = Literal["completed_contacts", "call_list_attempts"]


class Source(_Model):
    page_size: int = Field(default=100, ge=1, le=1000)
    # Outcome codes of the tenant's own, beyond the backend's (backends.catalog).
    extra_outcomes: tuple[str, ...] = ()
    type: SourceType | None = None  # cxone; completed_contacts when None
    since: str | None = None  # cxone completed_contacts: the first run's lower bound
    call_list: str | None = None  # cxone call_list_attempts: the calling list's id


class Batch(_Model):
    max_items: int = Field(default=200, ge=1, le=200)
    force_cold_storage: bool = False
    delete_active: bool = True


class Retry(_Model):
    max_attempts: int = Field(default=6, ge=1, le=20)
    initial_backoff_seconds: float = Field(default=1.5, ge=0)
    max_backoff_seconds: float = Field(default=60.0, ge=0)
    respect_retry_after: bool = True

    def full_jitter(self, retry: int) -> float:
        """The wait before the ``retry``-th retry (0 for the first): full jitter,
        ``uniform(0, min(max_backoff, initial_backoff * 2**retry))``, as the API client's
        backoff (archiver.cxone.retry.Backoff) waits between the tries of one call."""
        cap = min(self.max_backoff_seconds, self.initial_backoff_seconds * 2 ** retry)
        return random.uniform(0, cap)


class StageSpec(BaseModel):
    """One stage item of a policy: its kind, its type, and its options as the stage type's
    own options model (archiver.stages.registry.spec builds it; what the type means is
    the registry's business, never this module's)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    kind: Literal["filter", "transform", "sink"]
    type: str
    options: BaseModel


def _stages(kind: Literal["filter", "transform", "sink"]) -> Any:
    def parse(value: Any) -> Any:
        # Imported here: the registry's stage modules import this module.
        from archiver.stages import registry

        if not isinstance(value, list | tuple):
            return value
        return tuple(registry.spec(kind, item) for item in value)

    return BeforeValidator(parse)


class Policy(_Model):
    version: Literal[1] = 1
    name: str
    description: str = ""
    connection: Connection
    campaigns: tuple[Campaign, ...]
    source: Source = Source()
    filters: Annotated[tuple[StageSpec, ...], _stages("filter")] = ()
    transforms: Annotated[tuple[StageSpec, ...], _stages("transform")] = ()
    batch: Batch = Batch()
    retry: Retry = Retry()
    sinks: Annotated[tuple[StageSpec, ...], _stages("sink")] = ()
    # Legal hold files (governance/holds.py), relative to the policy file.
    holds: tuple[str, ...] = ()

    # Where the policy came from; relative template and audit paths resolve against it.
    path: Path | None = Field(default=None, exclude=True)
    # The policy's repository (policy/paths.py), set by the loader: no path it names may
    # lead outside it. None for a policy built in code: then the repository of its folder.
    root: Path | None = Field(default=None, exclude=True)
    sha256: str = Field(default="", exclude=True)

    def resolve(self, written: str, *, what: str = "path") -> Path:
        """A path written in the policy, resolved against the policy file's folder (the
        working folder for a policy without a file) with every symlink followed.

        Raises OutsideRepository when it leads outside the policy's repository: every
        file a run opens or writes because a policy names it goes through here.
        """
        base = self.path.parent if self.path is not None else Path.cwd()
        root = self.root if self.root is not None else repository_root(base)
        return confine(root, base, written, what=what)

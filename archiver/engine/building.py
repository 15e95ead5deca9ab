"""What a stage may need besides its own options when it is built: the public build
context every stage factory receives, built-in or third-party.

Its own module, so the stages and the registry that builds them import it without
importing each other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archiver.policy.model import Policy


@dataclass(frozen=True)
class BuildContext:
    """What a stage may need besides its own options.

    - ``policy``: the policy being run (read-only).
    - ``campaign_id``: the campaign a filter or transform decides for ("" for a sink,
      which serves the whole run).
    - ``secrets``: the secrets the run resolved, by environment variable name (a sink
      type declares the variables it needs: ``StageType.secret_envs``).
    - ``log``: a logger named after the stage, for what it wants to report; the run's
      log redacts every secret it holds.
    - :meth:`path`: a path the policy names, resolved and confined to its repository.
    """

    policy: Policy
    campaign_id: str = ""
    secrets: Mapping[str, str] = field(default_factory=dict)
    webhook_url: str | None = None  # the embedded simulator's receiver, for `url: embedded`
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("archiver.stages"))

    def path(self, written: str, *, what: str = "path") -> Path:
        """``written`` resolved against the policy's folder; OutsideRepository if it
        leads out of the policy's repository."""
        return self.policy.resolve(written, what=what)

    def for_stage(self, name: str) -> BuildContext:
        """This context with the stage's own logger."""
        return replace(self, log=logging.getLogger(f"archiver.stages.{name}"))

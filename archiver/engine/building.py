"""What a stage may need besides its own spec when it is built.

Its own module, so the stages and the registry that builds them import it without
importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from archiver.policy.model import Policy


@dataclass(frozen=True)
class BuildContext:
    """What a stage may need besides its own spec."""

    policy: Policy
    campaign_id: str = ""
    secrets: Mapping[str, str] = field(default_factory=dict)
    webhook_url: str | None = None  # the embedded simulator's receiver, for `url: embedded`

"""Read-only access to a policy's campaigns: a token, the completed-attempts listing and,
where the API shows it without acting, whether a campaign dials.

Nothing else is reachable from here: no archive call, no pause or resume, and no
sink is built, so no webhook secret is needed and no webhook is sent. A backend
that pages from a watermark lists from ``source.since`` (or its default), as a
first run would.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from archiver.connect import EMBEDDED_ATTEMPTS, base_url, connect
from archiver.engine.backend import AttemptRecord, Backend, MalformedRecord
from archiver.policy.model import Policy
from archiver.settings import Settings

Listed = AttemptRecord | MalformedRecord


class Listing:
    """A backend's listing, page by page, without anything that acts."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def pages(self, campaign_id: str) -> Iterator[Sequence[Listed]]:
        for page in self._backend.pages(campaign_id, since=None):
            yield page.records

    def dialing(self, campaign_id: str) -> Dialing:
        """What of the campaign dials now, as ``run`` would see it before its first batch
        (``Backend.dialing`` changes nothing); unknown when the API tells that only by
        refusing an archive call."""
        if not self._backend.reports_dialing:
            return Dialing(known=False)
        return Dialing(known=True, what=self._backend.dialing(campaign_id))


@dataclass(frozen=True, slots=True)
class Dialing:
    """Whether a campaign dials: ``known`` False when the API cannot say without acting;
    else ``what`` dials (the backend's words, e.g. its running skills), None for nothing."""

    known: bool
    what: Mapping[str, Any] | None = None


@contextmanager
def open_listing(
    policy: Policy, settings: Settings | None = None, *, attempts_per_campaign: int | None = None
) -> Iterator[tuple[Listing, str]]:
    """The listing of ``policy``'s API (``embedded`` starts the simulator) and its base URL.

    ``attempts_per_campaign`` sizes the embedded simulator's data set (its default when None).
    """
    settings = settings or Settings.load()
    # Without sinks the connection resolves no webhook secret: reviewing needs none.
    listing_only = policy.model_copy(update={"sinks": ()})
    size = EMBEDDED_ATTEMPTS if attempts_per_campaign is None else attempts_per_campaign
    with connect(listing_only, settings, attempts_per_campaign=size) as conn:
        yield Listing(conn.backend), base_url(policy, settings)

"""Read-only access to a policy's campaigns: a token and the completed-attempts listing.

Nothing else is reachable from here: no archive call, no pause or resume, and no
sink is built, so no webhook secret is needed and no webhook is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from archiver.connect import EMBEDDED_ATTEMPTS, base_url, connect
from archiver.engine.protocols import Source
from archiver.policy.model import Policy
from archiver.settings import Settings
from archiver.stages.sources.cxone import CxoneSource


@contextmanager
def open_listing(
    policy: Policy, settings: Settings | None = None, *, attempts_per_campaign: int | None = None
) -> Iterator[tuple[Source, str]]:
    """The listing of ``policy``'s API (``embedded`` starts the simulator) and its base URL.

    ``attempts_per_campaign`` sizes the embedded simulator's data set (its default when None).
    """
    settings = settings or Settings()
    # Without sinks the connection resolves no webhook secret: reviewing needs none.
    listing_only = policy.model_copy(update={"sinks": ()})
    size = EMBEDDED_ATTEMPTS if attempts_per_campaign is None else attempts_per_campaign
    window = policy.connection.max_in_flight
    with (
        connect(listing_only, settings, attempts_per_campaign=size) as conn,
        ThreadPoolExecutor(window, thread_name_prefix="list") as pool,
    ):
        source = CxoneSource(conn.client, policy.source.page_size, pool, window)
        yield source, base_url(policy, settings)

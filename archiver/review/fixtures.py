"""Attempts to compare policies on, grouped by the campaign they are listed in.

Three origins: the simulator's seeded generator run in-process (no HTTP; the same
records the embedded simulator serves for the same seed, campaigns and size), a
file of listing records (YAML or JSON list, or the cases of a ``.test.yaml``), or
a live listing (see archiver.review.listing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from archiver.connect import EMBEDDED_ATTEMPTS, EMBEDDED_SEED
from archiver.errors import UsageError
from archiver.policy._yaml import parse
from archiver.policy.model import EMBEDDED, Policy
from archiver.review.listing import open_listing
from archiver.review.testfile import is_test_file, load_test_file
from archiver.settings import Settings
from archiver.simulator import SimConfig
from archiver.simulator.dataset import CampaignData, derive_tags

DEFAULT_SEED = EMBEDDED_SEED
DEFAULT_COUNT = EMBEDDED_ATTEMPTS
MAX_FIXTURE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Group:
    """Records listed in one campaign; ``campaign_id`` None: in each policy's first campaign."""

    campaign_id: str | None
    records: Sequence[object]


@dataclass(frozen=True, slots=True)
class Fixtures:
    description: str
    groups: Sequence[Group]


def generated(campaign_ids: Sequence[str], *, count: int, seed: int) -> Fixtures:
    """``count`` attempts per campaign from the simulator's generator, without a server."""
    config = SimConfig(seed=seed, campaign_ids=list(campaign_ids), attempts_per_campaign=count)
    groups = []
    for cid, tag in zip(campaign_ids, derive_tags(seed, list(campaign_ids)), strict=True):
        data = CampaignData(cid, tag, config)
        groups.append(Group(cid, [data.record(i) for i in range(count)]))
    return Fixtures(
        f"generated: seed {seed}, {count} attempts in each of {len(groups)} campaign(s)", groups
    )


def from_file(path: Path) -> Fixtures:
    """Listing records from ``path``: a YAML/JSON list, or the cases of a policy test file."""
    if is_test_file(path):
        loaded = load_test_file(path)
        if isinstance(loaded, list):
            raise UsageError("invalid fixtures: " + "; ".join(d.format() for d in loaded))
        by_campaign: dict[str | None, list[object]] = {}
        for case in loaded.cases:
            by_campaign.setdefault(case.campaign, []).append(case.attempt)
        groups = [Group(cid, records) for cid, records in by_campaign.items()]
        return Fixtures(f"{path}: {len(loaded.cases)} test case attempt(s)", groups)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UsageError(f"cannot read fixtures {path}: {err.strerror or err}") from None
    if len(raw) > MAX_FIXTURE_BYTES:
        raise UsageError(f"fixtures {path} are larger than 64 MiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"fixtures {path} are not UTF-8 text") from None
    parsed = parse(text, str(path))
    if isinstance(parsed, list):
        raise UsageError("invalid fixtures: " + "; ".join(d.format() for d in parsed))
    if not isinstance(parsed.data, list):
        raise UsageError(f"fixtures {path} must be a list of listing records (or a .test.yaml)")
    return Fixtures(f"{path}: {len(parsed.data)} record(s)", [Group(None, parsed.data)])


def from_embedded_simulator(old: Policy, new: Policy, *, count: int) -> Fixtures:
    """The campaigns of both policies as the embedded simulator lists them, over HTTP."""
    campaigns = {c.id: c for c in (*old.campaigns, *new.campaigns)}
    listing_policy = new.model_copy(update={
        "campaigns": tuple(campaigns.values()),
        "connection": new.connection.model_copy(update={"base_url": EMBEDDED}),
    })
    groups = []
    # Explicit settings: CXONE_BASE_URL must not send this listing to a real tenant.
    settings = Settings(base_url=None, client_id=None, client_secret=None)
    with open_listing(listing_policy, settings, attempts_per_campaign=count) as (listing, _):
        for cid in campaigns:
            groups.append(Group(cid, [record for page in listing.pages(cid) for record in page]))
    return Fixtures(
        f"embedded simulator: seed {EMBEDDED_SEED}, {count} attempts in each of "
        f"{len(groups)} campaign(s)",
        groups,
    )

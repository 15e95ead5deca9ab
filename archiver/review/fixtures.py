"""Attempts to compare policies on, grouped by the campaign they are listed in.

Three origins: records generated in-process for the policies' backend (no HTTP), a
file of listing records (YAML or JSON list, or the cases of a ``.test.yaml``), or
a live listing (see archiver.review.listing).

Generated records are shaped as the policies' backend lists them, since outcome
names differ between backends: for ``campaign-archive`` the simulator's seeded
generator (the same records the embedded simulator serves for the same seed,
campaigns and size); for ``cxone`` completed contacts (or calling-list attempts)
read by the cxone backend's own record parser, whose dispositions are the cxone
simulator's plus every outcome either policy names, each carried by some record.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from archiver.backends.catalog import CALL_LIST_ATTEMPTS, COMPLETED_CONTACTS, CXONE
from archiver.connect import EMBEDDED_ATTEMPTS, EMBEDDED_SEED
from archiver.engine.backend import AttemptRecord, MalformedRecord
from archiver.errors import UsageError
from archiver.policy._yaml import parse
from archiver.policy.model import EMBEDDED, Policy
from archiver.review.listing import open_listing
from archiver.review.testfile import is_test_file, load_test_file
from archiver.settings import Settings
from archiver.simulator import SimConfig
from archiver.simulator.dataset import CampaignData, derive_tags
from archiver.stages import registry

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


def backend_of(policy: Policy) -> str:
    """The kind of records ``policy``'s listing yields: its API (and, on cxone, the source
    type), e.g. ``campaign-archive``, ``cxone completed_contacts``."""
    api = policy.connection.api
    if api == CXONE:
        return f"{api} {policy.source.type or COMPLETED_CONTACTS}"
    return api


def named_outcomes(policy: Policy) -> tuple[str, ...]:
    """The outcomes ``policy``'s stages name (approved outcomes, retention rules), in order."""
    named: dict[str, None] = {}
    for one in registry.placed(policy):
        if one.stage is not None:
            named.update((code, None) for code, _ in one.stage.outcomes(one.item.options))
    return tuple(named)


def same_backend(old: Policy, new: Policy, what: str) -> None:
    """Refuse to compare on ``what`` records when the policies' listings differ."""
    if backend_of(old) != backend_of(new):
        raise UsageError(
            f"OLD lists from {backend_of(old)}, NEW from {backend_of(new)}: their records "
            f"differ in fields and outcome names, so no {what} attempt is one both could "
            "list; compare them on given records with --fixtures FILE"
        )


def generated_for(old: Policy, new: Policy, *, count: int, seed: int) -> Fixtures:
    """``count`` generated attempts per campaign of either policy, as their backend lists
    them. Policies whose listings differ are refused: no record is both."""
    same_backend(old, new, "generated")
    campaigns = list(dict.fromkeys([c.id for c in (*old.campaigns, *new.campaigns)]))
    if new.connection.api != CXONE:
        return generated(campaigns, count=count, seed=seed)
    outcomes = dict.fromkeys((*named_outcomes(old), *named_outcomes(new)))
    return generated_cxone(
        campaigns, count=count, seed=seed, named=tuple(outcomes),
        source_type=new.source.type or COMPLETED_CONTACTS,
    )


def generated(campaign_ids: Sequence[str], *, count: int, seed: int) -> Fixtures:
    """``count`` campaign-archive attempts per campaign from the simulator's generator,
    without a server."""
    config = SimConfig(seed=seed, campaign_ids=list(campaign_ids), attempts_per_campaign=count)
    groups = []
    for cid, tag in zip(campaign_ids, derive_tags(seed, list(campaign_ids)), strict=True):
        data = CampaignData(cid, tag, config)
        groups.append(Group(cid, [data.record(i) for i in range(count)]))
    return Fixtures(
        f"generated: seed {seed}, {count} attempts in each of {len(groups)} campaign(s)", groups
    )


# Outcomes of calling-list attempts no agent dispositioned (the system's class of the call).
_SYSTEM_CLASSES = ("No Answer", "Busy", "Answering Machine")
_CXONE_START_MS = 1_788_220_800_000  # 2026-09-01T00:00:00Z, the cxone simulator's first day


def generated_cxone(
    campaign_ids: Sequence[str], *, count: int, seed: int, named: Sequence[str] = (),
    source_type: str = COMPLETED_CONTACTS,
) -> Fixtures:
    """``count`` cxone records per campaign, as the cxone backend reads what it lists.

    The tenant's dispositions are the cxone simulator's and every outcome in ``named``;
    each block of records carries each of them once, and once none (``(none)``, or on
    a calling list the system's class of the call), in a seeded order: so every
    disposition a policy names is decided, given ``count`` of at least one block.
    """
    # Imported here: the cxone backend loads its wire models, which only cxone needs.
    from archiver.backends.cxone import records, timestamps
    from archiver.backends.cxone.timestamps import MILLISECOND_NS
    from archiver.simulator.cxone.config import DEFAULT_DISPOSITIONS

    names = [n for n in dict.fromkeys((*DEFAULT_DISPOSITIONS, *named))
             if n != records.NO_DISPOSITION]
    by_id = {i + 1: name for i, name in enumerate(names)}
    slots: list[int | None] = [*by_id, None]
    groups = []
    for n, cid in enumerate(campaign_ids):
        rng = random.Random(f"review/cxone/{seed}/{cid}")
        listed: list[AttemptRecord | MalformedRecord] = []
        for i, disposition in zip(range(count), _blocks(slots, rng), strict=False):
            contact_id = 700_000_001 + n * count + i
            if source_type == CALL_LIST_ATTEMPTS:
                listed.append(records.attempt({
                    "contactId": contact_id, "externalId": f"P{n}-{i:06d}",
                    "agentDispDesc": by_id[disposition] if disposition else None,
                    "systemClassName": "Answered" if disposition
                    else rng.choice(_SYSTEM_CLASSES),
                }, cid))
            else:
                stamp = _CXONE_START_MS + n * 86_400_000 + i * 1000
                listed.append(records.contact({
                    "contactId": contact_id, "campaignId": cid,
                    "lastUpdateTime": timestamps.format_ms(stamp * MILLISECOND_NS),
                    "primaryDispositionId": disposition,
                    "totalDurationSeconds": rng.randint(5, 900),
                }, cid, by_id.get))
        groups.append(Group(cid, listed))
    return Fixtures(
        f"generated cxone {source_type}: seed {seed}, {count} attempts in each of "
        f"{len(groups)} campaign(s), dispositions {', '.join(names)} and none",
        groups,
    )


def _blocks(slots: Sequence[int | None], rng: random.Random) -> Iterator[int | None]:
    """``slots`` again and again, each time in a new seeded order."""
    while True:
        block = list(slots)
        rng.shuffle(block)
        yield from block


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
    parsed = parse(text, str(path), "fixtures file")
    if isinstance(parsed, list):
        raise UsageError("invalid fixtures: " + "; ".join(d.format() for d in parsed))
    if not isinstance(parsed.data, list):
        raise UsageError(f"fixtures {path} must be a list of listing records (or a .test.yaml)")
    return Fixtures(f"{path}: {len(parsed.data)} record(s)", [Group(None, parsed.data)])


def from_embedded_simulator(old: Policy, new: Policy, *, count: int) -> Fixtures:
    """The campaigns of both policies as the embedded simulator of NEW's API lists them,
    over HTTP."""
    same_backend(old, new, "listed")
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
    # What was listed, not what was asked for: the cxone simulator's tenant has its own
    # number of contacts per campaign.
    sizes = {len(g.records) for g in groups}
    listed = (
        f"{sizes.pop()} attempts in each of {len(groups)} campaign(s)" if len(sizes) == 1
        else f"{sum(len(g.records) for g in groups)} attempts in {len(groups)} campaign(s) ("
        + ", ".join(str(len(g.records)) for g in groups) + ")"
    )
    return Fixtures(f"embedded simulator ({backend_of(new)}): seed {EMBEDDED_SEED}, {listed}",
                    groups)

"""``diff``: the attempts whose decision or retention a policy change alters.

Both policies decide every fixture record through the engine's pipeline (see
archiver.review.verdicts); records are paired by campaign and position, so a
record without a usable id is still compared with itself.

A change can only show on records that reach it: every outcome a policy names
(approved, or given a retention rule) that no fixture record carries is reported
as a warning, as is comparing policies whose backends list different records.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from archiver.policy.model import Policy
from archiver.review.fixtures import Fixtures, backend_of, named_outcomes
from archiver.review.verdicts import Decider, Verdict

CampaignState = Literal["ok", "would_abort", "absent"]
ABSENT: CampaignState = "absent"  # the campaign is not in that policy


@dataclass(frozen=True, slots=True)
class Change:
    campaign_id: str
    index: int  # position of the record in its campaign's fixtures
    attempt_id: str
    outcome: str
    kind: str  # e.g. "archive->skip", "retention 365->730"
    old: Verdict | None
    new: Verdict | None


@dataclass
class CampaignDiff:
    id: str
    old: CampaignState = "ok"
    new: CampaignState = "ok"
    compared: int = 0


@dataclass
class PolicyDiff:
    old: Policy
    new: Policy
    old_name: str
    new_name: str
    fixtures: str
    compared: int = 0
    campaigns: list[CampaignDiff] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    # Outcomes either policy names that no fixture record carries: changes to them
    # cannot show.
    unreached: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counter = Counter(c.kind for c in self.changes)
        return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def change_kind(old: Verdict | None, new: Verdict | None) -> str | None:
    """How a record's decision changes, or None when it does not."""
    if old is None or new is None:
        if old is None and new is None:
            return None
        return f"{old.kind if old else ABSENT}->{new.kind if new else ABSENT}"
    if old.kind != new.kind:
        return f"{old.kind}->{new.kind}"
    if old.kind == "archive":
        if old.retention_days != new.retention_days:
            return f"retention {old.retention_days}->{new.retention_days}"
        return None
    if old.reason != new.reason:
        return f"{old.kind}: reason changed"
    return None


def diff_policies(
    old: Policy, new: Policy, fixtures: Fixtures, *, old_name: str, new_name: str
) -> PolicyDiff:
    result = PolicyDiff(old, new, old_name, new_name, fixtures.description)
    old_ids = {c.id for c in old.campaigns}
    new_ids = {c.id for c in new.campaigns}
    seen: set[str] = set()
    for group in fixtures.groups:
        label = group.campaign_id or "(fixtures)"
        old_decider = _decider(old, group.campaign_id, old_ids)
        new_decider = _decider(new, group.campaign_id, new_ids)
        camp = CampaignDiff(
            label,
            old="ok" if old_decider else ABSENT,
            new="ok" if new_decider else ABSENT,
        )
        for index, raw in enumerate(group.records):
            fallback = f"(no id, item {index})"
            before = old_decider.decide(raw, fallback_id=fallback) if old_decider else None
            after = new_decider.decide(raw, fallback_id=fallback) if new_decider else None
            if before is not None and before.kind == "abort":
                camp.old = "would_abort"
            if after is not None and after.kind == "abort":
                camp.new = "would_abort"
            seen.update(v.outcome for v in (before, after) if v is not None)
            kind = change_kind(before, after)
            if kind is not None:
                either = after or before
                assert either is not None
                result.changes.append(
                    Change(label, index, either.attempt_id, either.outcome, kind, before, after)
                )
            camp.compared += 1
        result.compared += camp.compared
        result.campaigns.append(camp)
    _warn(result, seen)
    return result


def _warn(result: PolicyDiff, seen: set[str]) -> None:
    old, new = result.old, result.new
    if backend_of(old) != backend_of(new):
        result.warnings.append(
            f"OLD lists from {backend_of(old)}, NEW from {backend_of(new)}: each decides "
            "these records as its own backend would read them, which no real listing gives both"
        )
    by_old, by_new = named_outcomes(old), named_outcomes(new)
    result.unreached = sorted(set(by_old + by_new) - seen)
    for code in result.unreached:
        who = "OLD and NEW name" if code in by_old and code in by_new else (
            "OLD names" if code in by_old else "NEW names")
        result.warnings.append(
            f"no attempt compared has outcome {code!r}, which {who}: a change to what "
            "happens to it cannot show here"
        )


def _decider(policy: Policy, campaign_id: str | None, ids: set[str]) -> Decider | None:
    if campaign_id is None:
        return Decider(policy, policy.campaigns[0].id)
    return Decider(policy, campaign_id) if campaign_id in ids else None


def _verdict_json(v: Verdict | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {"decision": v.kind, "reason": v.reason, "retention_days": v.retention_days}


def diff_json(d: PolicyDiff) -> dict[str, Any]:
    return {
        "old": {"name": d.old.name, "source": d.old_name, "sha256": d.old.sha256},
        "new": {"name": d.new.name, "source": d.new_name, "sha256": d.new.sha256},
        "fixtures": d.fixtures,
        "compared": d.compared,
        "changed": len(d.changes),
        "warnings": d.warnings,
        "unreached_outcomes": d.unreached,
        "counts": d.counts(),
        "campaigns": [
            {"id": c.id, "old": c.old, "new": c.new, "compared": c.compared} for c in d.campaigns
        ],
        "changes": [
            {
                "campaign_id": c.campaign_id,
                "index": c.index,
                "attempt_id": c.attempt_id,
                "outcome": c.outcome,
                "change": c.kind,
                "old": _verdict_json(c.old),
                "new": _verdict_json(c.new),
            }
            for c in d.changes
        ],
    }

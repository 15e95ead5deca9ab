"""``plan``: what a run of a policy would do with what the API lists now.

Every listed record goes through the engine's pipeline (archiver.review.verdicts);
only counts and a few sample attempts are kept, so a campaign of any size plans in
constant memory. A campaign whose ``anonymized`` filter says ``on_violation: abort``
and meets an unanonymized attempt *would abort*: the run archives none of it. A run
stops listing it at that first violation, so what the plan says the run would record
of it (``would``) is what was listed up to there; its table still counts the whole
listing, every violation included, for the people who must fix them.

Dialing: for a campaign the run would act on, plan says what ``on_active`` would make
the run do. Where the API shows what dials without acting (cxone: the campaign's
running skills), plan looks, as the run does before its first batch; where it tells
only by refusing an archive call (campaign-archive: 409), plan cannot know and says
what the run would do if it is refused. It never pauses anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from archiver.engine.campaign import changes_tenant
from archiver.engine.noid import NoIdNames
from archiver.errors import ApiError
from archiver.policy.model import Campaign, Policy
from archiver.review.samples import Payload, SampleIds, render_payloads, sink_templates
from archiver.review.verdicts import ArchiveFields, Decider, Verdict
from archiver.target import target_for

SAMPLE_LINES = 3  # attempts in the sample archive body and batch event
UNPARSED = "(unparsed)"  # outcome column of records too malformed to read one from

SAMPLE_IDS = SampleIds(
    run_id="plan-sample",
    batch_id="plan-sample-batch",
    timestamp="1970-01-01T00:00:00.000Z",
    migration_job_id="plan-sample-job",
    job_status="PLAN_SAMPLE",
)

if TYPE_CHECKING:
    from archiver.review.listing import Dialing

CampaignStatus = Literal["ok", "would_abort", "error"]
# What on_active would make the run do with a campaign ("nothing": it would not pause,
# skip or fail it for dialing).
RunWould = Literal["pause_and_resume", "skip", "fail", "nothing"]

_WHEN_DIALING = {
    "pause_and_resume": "run would pause it before its first batch and resume it after "
                        "(on_active: pause_and_resume)",
    "skip": "run would skip it (on_active: skip): none of it archived, its attempts "
            "recorded skipped",
    "fail": "run would fail it (on_active: fail): none of it archived, its attempts recorded "
            "failed, exit 1",
}
_UNKNOWN = ("whether it dials shows only when the API refuses its first batch (409), "
            "which plan does not send; if it does, ")


@dataclass(frozen=True)
class DialingPlan:
    """What the run would do about the campaign's dialing; ``dialing`` None: not known."""

    on_active: str
    run_would: RunWould
    note: str
    dialing: bool | None = None
    what: Mapping[str, Any] | None = None  # what dials now, in the backend's words


@dataclass
class OutcomeRow:
    archive: int = 0
    skip: int = 0
    quarantine: int = 0
    abort: int = 0
    retention: Counter[int] = field(default_factory=Counter)

    def add(self, verdict: Verdict) -> None:
        if verdict.kind == "archive":
            self.archive += 1
            if verdict.retention_days is not None:
                self.retention[verdict.retention_days] += 1
        elif verdict.kind == "skip":
            self.skip += 1
        elif verdict.kind == "quarantine":
            self.quarantine += 1
        else:
            self.abort += 1


@dataclass(frozen=True)
class AbortPoint:
    """Where a run stops listing an aborting campaign: at its first violation, which it
    records quarantined. What it listed before is recorded as decided, except that an
    attempt that passes every filter is recorded failed (with the campaign's reason)."""

    attempt_id: str
    listed: int  # what a run lists of the campaign, the violating attempt included
    skip: int
    quarantine: int  # the violating attempt included
    fail: int


@dataclass
class CampaignPlan:
    id: str
    listed: int = 0
    error: str = ""
    first_abort: str = ""
    stop: AbortPoint | None = None
    total: OutcomeRow = field(default_factory=OutcomeRow)
    outcomes: dict[str, OutcomeRow] = field(default_factory=dict)
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    sample: list[ArchiveFields] = field(default_factory=list)
    dialing: DialingPlan | None = None

    @property
    def status(self) -> CampaignStatus:
        if self.error:
            return "error"
        return "would_abort" if self.total.abort else "ok"

    @property
    def reason(self) -> str:
        return self.error or self.first_abort

    def add(self, verdict: Verdict) -> None:
        self.listed += 1
        self.total.add(verdict)
        self.outcomes.setdefault(verdict.outcome or UNPARSED, OutcomeRow()).add(verdict)
        if verdict.kind == "abort" and self.stop is None:
            self.first_abort = verdict.reason
            self.stop = AbortPoint(
                verdict.attempt_id, self.listed, self.total.skip, self.total.quarantine + 1,
                self.total.archive,
            )
        if verdict.kind in ("skip", "quarantine"):
            self.reasons[(verdict.kind, verdict.reason)] += 1
        if verdict.line is not None and len(self.sample) < SAMPLE_LINES:
            self.sample.append(verdict.line)

    def would(self) -> dict[str, int]:
        """What the run would record: an aborting campaign archives nothing, and only
        what was listed up to its first violation is recorded (see AbortPoint)."""
        if self.stop is not None and not self.error:
            stop = self.stop
            return {"listed": stop.listed, "archive": 0, "skip": stop.skip,
                    "quarantine": stop.quarantine, "fail": stop.fail}
        archive = self.total.archive if self.status == "ok" else 0
        return {"listed": self.listed, "archive": archive, "skip": self.total.skip,
                "quarantine": self.total.quarantine, "fail": 0}


@dataclass
class Plan:
    policy: Policy
    base_url: str
    campaigns: list[CampaignPlan]
    samples: list[Payload]
    sample_campaign: str | None
    notes: list[str]

    @property
    def failed(self) -> bool:
        return any(c.status == "error" for c in self.campaigns)

    @property
    def would_pause(self) -> list[str]:
        """The campaigns the API shows dialing now that the run would pause (and resume)."""
        return [c.id for c in self.campaigns
                if c.dialing and c.dialing.dialing and c.dialing.run_would == "pause_and_resume"]

    def totals(self) -> dict[str, int]:
        """What the run would record over every campaign (listed, archive, skip, quarantine,
        fail), and of the whole listings of the aborting ones: ``blocked``, the attempts
        that pass every filter, and ``violations``."""
        out = {"listed": 0, "archive": 0, "skip": 0, "quarantine": 0, "fail": 0,
               "blocked": 0, "violations": 0}
        for c in self.campaigns:
            for kind, n in c.would().items():
                out[kind] += n
            if c.status == "would_abort":
                out["blocked"] += c.total.archive
            out["violations"] += c.total.abort
        return out


PagesOf = Callable[[str], Iterable[Sequence[object]]]
DialingOf = Callable[[str], "Dialing"]


def plan_policy(
    policy: Policy, pages_of: PagesOf, *, base_url: str, dialing_of: DialingOf | None = None
) -> Plan:
    """Decide every record ``pages_of(campaign_id)`` lists for each of the policy's campaigns;
    ``dialing_of(campaign_id)`` (read-only) says what dials, for what on_active would do."""
    campaigns = []
    for spec in policy.campaigns:
        planned = _plan_campaign(policy, spec.id, pages_of)
        planned.dialing = dialing_plan(policy, spec, planned, dialing_of)
        campaigns.append(planned)
    source = next((c for c in campaigns if c.sample and c.status == "ok"), None)
    source = source or next((c for c in campaigns if c.sample), None)
    _, notes = sink_templates(policy)
    if source is None:
        notes.append("no attempt would be archived: the archive body and batch events are not sampled")
    totals = {"archived": 0, "skipped": 0, "quarantined": 0}
    for c in campaigns:
        would = c.would()
        totals["archived"] += would["archive"]
        totals["skipped"] += would["skip"]
        totals["quarantined"] += would["quarantine"]
    samples = render_payloads(
        policy,
        source.id if source else policy.campaigns[0].id,
        source.sample if source else [],
        totals,
        SAMPLE_IDS,
        # What a run would write: the host after --base-url and CXONE_BASE_URL.
        target=target_for(base_url, backend=policy.connection.api,
                          tenant=policy.connection.tenant_id).as_dict(),
    )
    return Plan(policy, base_url, campaigns, samples, source.id if source else None, notes)


def _plan_campaign(policy: Policy, campaign_id: str, pages_of: PagesOf) -> CampaignPlan:
    plan = CampaignPlan(campaign_id)
    decider = Decider(policy, campaign_id)
    unnamed = NoIdNames()  # a record without an id: the name a run would record it under
    try:
        for page in pages_of(campaign_id):
            for raw in page:
                record = decider.record(raw)
                plan.add(decider.decide(record, fallback_id=unnamed.name(record)))
    except ApiError as err:
        plan.error = str(err)
    return plan


def dialing_plan(
    policy: Policy, campaign: Campaign, planned: CampaignPlan, dialing_of: DialingOf | None
) -> DialingPlan:
    """What ``on_active`` would make the run do, decided as the run decides: only for a
    campaign it would send a batch of, from what dials before that batch."""
    mode = campaign.on_active
    if not changes_tenant(policy, campaign):
        note = "an export changes nothing on the tenant: run neither checks nor pauses its dialing"
        return DialingPlan(mode, "nothing", note)
    if planned.status != "ok" or not planned.would()["archive"]:
        note = "nothing to archive: run sends no batch, so it neither checks nor pauses its dialing"
        return DialingPlan(mode, "nothing", note)
    if dialing_of is None:
        return DialingPlan(mode, mode, _UNKNOWN + _WHEN_DIALING[mode])
    try:
        seen = dialing_of(campaign.id)
    except ApiError as err:
        note = f"could not tell whether it dials ({err}); if it does, {_WHEN_DIALING[mode]}"
        return DialingPlan(mode, mode, note)
    if not seen.known:
        return DialingPlan(mode, mode, _UNKNOWN + _WHEN_DIALING[mode])
    if seen.what is None:
        note = "not dialing now: run would not pause, skip or fail it for dialing"
        return DialingPlan(mode, "nothing", note, dialing=False)
    note = f"dialing now ({describe_dialing(seen.what)}): {_WHEN_DIALING[mode]}"
    return DialingPlan(mode, mode, note, dialing=True, what=seen.what)


def describe_dialing(what: Mapping[str, Any]) -> str:
    """``{"skills": [40001, 40002]}`` as ``skills 40001, 40002``."""
    parts = []
    for key, value in what.items():
        shown = ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
        parts.append(f"{key} {shown}")
    return "; ".join(parts)


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan for machines; stable key order, counts as integers."""
    policy = plan.policy
    return {
        "policy": {
            "name": policy.name,
            "path": str(policy.path) if policy.path else None,
            "sha256": policy.sha256,
        },
        "base_url": plan.base_url,
        "read_only": True,
        "totals": plan.totals(),
        "would_pause": plan.would_pause,
        "campaigns": [_campaign_json(c) for c in plan.campaigns],
        "samples": {
            "campaign_id": plan.sample_campaign,
            "payloads": [
                {"sink": p.sink, "index": p.index, "event": p.event, "template": p.template,
                 "body": p.body}
                for p in plan.samples
            ],
        },
        "notes": plan.notes,
    }


def _retention_json(counter: Counter[int]) -> dict[str, int]:
    return {str(days): n for days, n in sorted(counter.items())}


def _campaign_json(c: CampaignPlan) -> dict[str, Any]:
    blocked = c.status == "would_abort"
    return {
        "id": c.id,
        "status": c.status,
        "reason": c.reason,
        **c.would(),
        # An aborting campaign: the attempt a run stops listing it at, and how many the
        # API lists of it in all (what its outcomes and violations count).
        "stops_at": None if c.stop is None or c.error else {
            "attempt_id": c.stop.attempt_id, "whole_listing": c.listed,
        },
        "blocked": c.total.archive if blocked else 0,
        "violations": c.total.abort,
        "retention_days": {} if blocked else _retention_json(c.total.retention),
        "outcomes": [
            {
                "outcome": name,
                "archive": 0 if blocked else row.archive,
                "blocked": row.archive if blocked else 0,
                "skip": row.skip,
                "quarantine": row.quarantine,
                "abort": row.abort,
                "retention_days": {} if blocked else _retention_json(row.retention),
            }
            for name, row in sorted(c.outcomes.items())
        ],
        "reasons": [
            {"decision": kind, "reason": reason, "count": n}
            for (kind, reason), n in sorted(c.reasons.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1]))
        ],
        "dialing": _dialing_json(c.dialing),
    }


def _dialing_json(d: DialingPlan | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {"on_active": d.on_active, "dialing": d.dialing,
            "what": dict(d.what) if d.what is not None else None, "run_would": d.run_would,
            "note": d.note}

"""Step 3: rules that span several keys, checked on the typed policy once the schema passed.

Each check is a generator of diagnostics; positions come from the JSON path of the
value at fault (the typed policy keeps the file's order, so indices match).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from datetime import datetime

from archiver.errors import ConfigError, Diagnostic
from archiver.netutil import url_problem
from archiver.policy import _codes as codes
from archiver.policy._document import Document, JsonPath
from archiver.policy._outcomes import check_outcomes, known_outcomes
from archiver.policy.model import (
    CAMPAIGN_ARCHIVE,
    CXONE,
    DEFAULT_API_VERSION,
    DEFAULT_AUTH_URL,
    EMBEDDED,
    Policy,
)
from archiver.policy.paths import OutsideRepository
from archiver.stages import registry
from archiver.stages.descriptor import CheckContext
from archiver.stages.guard import a_ctrl_c, described

Check = Callable[[Policy, Document], Iterator[Diagnostic]]

# The filter a campaign-archive policy must have: that API takes anonymized attempts
# only, and each archive body carries the record's own flag.
REQUIRED_ON_CAMPAIGN_ARCHIVE = "anonymized"


def check(policy: Policy, doc: Document) -> list[Diagnostic]:
    found = [diag for rule in CHECKS for diag in rule(policy, doc)]
    return sorted(found, key=lambda d: (d.line, d.col))


def _campaigns(policy: Policy, doc: Document) -> Iterator[Diagnostic]:
    first: dict[str, int] = {}
    for i, campaign in enumerate(policy.campaigns):
        key = campaign.id.lower()  # UUIDs compare without regard to case
        if key in first:
            line = doc.positions.value(("campaigns", first[key], "id")).line
            yield doc.at_value(("campaigns", i, "id"), codes.DUPLICATE_CAMPAIGN,
                               f"campaign `{campaign.id}` is listed twice (first at line {line})")
        else:
            first[key] = i


def approved_outcomes(policy: Policy) -> frozenset[str] | None:
    """Outcomes every filter approves; None when no filter restricts them."""
    approved: frozenset[str] | None = None
    for item in policy.filters:
        stage = registry.stage_type(item)
        codes_ = stage.approves(item.options) if stage is not None else None
        if codes_ is not None:
            approved = codes_ if approved is None else approved & codes_
    return approved


def _stages(policy: Policy, doc: Document) -> Iterator[Diagnostic]:
    """Each stage's own checks (its type's ``check``), and types allowed only once."""
    approved = approved_outcomes(policy)
    known = frozenset(known_outcomes(policy))
    first: dict[tuple[str, str], tuple[str, int]] = {}
    for one in registry.placed(policy):
        stage, item = one.stage, one.item
        if stage is None:
            continue
        seen = first.setdefault((one.kind, item.type), one.at)
        if stage.unique is not None and seen != one.at:
            line = doc.positions.value(seen).line
            yield doc.at_value((*one.at, "type"), stage.unique,
                               f"only one `{item.type}` {one.kind} is allowed (first at line "
                               f"{line})")
        ctx = CheckContext(
            policy=policy, index=one.at[1],
            confine=lambda written, what: doc.confine(written, what=what),
            show=doc.show, line_of=_line_of(doc, one.options_at),
            approved=approved, known_outcomes=known,
        )
        try:
            findings = list(stage.check(item.options, ctx))
        except BaseException as err:  # a plugin's own check is a stranger's code
            if a_ctrl_c(err):
                raise
            yield doc.at_value((*one.at, "type"), codes.PLUGIN_CHECK,
                               f"the `{item.type}` {one.kind}'s own check failed: "
                               f"{described(err)}")
            continue
        for finding in findings:
            yield doc.at_value((*one.options_at, *finding.at), finding.code, finding.message)


def _line_of(doc: Document, where: JsonPath) -> Callable[[JsonPath], int]:
    def line(at: JsonPath) -> int:
        return doc.positions.value((*where, *at)).line

    return line


def _required(policy: Policy, doc: Document) -> Iterator[Diagnostic]:
    if policy.connection.api != CAMPAIGN_ARCHIVE:
        # On cxone there is no flag to check (V018 refuses the filter there): the archive
        # is what our sinks keep, and they claim nothing about anonymization.
        return
    if not any(item.type == REQUIRED_ON_CAMPAIGN_ARCHIVE for item in policy.filters):
        # Archive bodies carry each record's own anonymized flag and the API takes only
        # anonymized attempts: the check must be in the policy, where a reviewer sees it.
        yield doc.at_key(("filters",), codes.NO_ANONYMIZED,
                         "no `anonymized` filter: add `- type: anonymized` with "
                         "`on_violation: quarantine` to `filters`, so that an attempt still "
                         "carrying personal data is never archived")


def _url_problem(url: str, what: str) -> str | None:
    """Why ``url`` is refused, if it is (``embedded`` is a base URL too)."""
    if url == EMBEDDED:
        return None
    return url_problem(url, what, otherwise=f" or `{EMBEDDED}`")


def _connection(policy: Policy, doc: Document) -> Iterator[Diagnostic]:
    connection = policy.connection
    if connection.base_url is not None:
        problem = _url_problem(connection.base_url, "`connection.base_url`")
        if problem:
            yield doc.at_value(("connection", "base_url"), codes.INSECURE_URL, problem)
    if connection.api == CXONE and connection.auth_url != DEFAULT_AUTH_URL:
        problem = url_problem(connection.auth_url, "`connection.auth_url`")
        if problem:
            yield doc.at_value(("connection", "auth_url"), codes.INSECURE_URL, problem)
    if policy.retry.initial_backoff_seconds > policy.retry.max_backoff_seconds:
        yield doc.at_value(("retry", "initial_backoff_seconds"), codes.BACKOFF_ORDER,
                           "`retry.initial_backoff_seconds` is larger than "
                           "`retry.max_backoff_seconds`")


def _audit_logs(policy: Policy, doc: Document) -> Iterator[Diagnostic]:
    """Two sinks appending to one audit log would interleave two chains."""
    seen: dict[object, int] = {}
    for i, item, stage in registry.sinks_of(policy):
        written = stage.audit_log(item.options)
        if written is None:
            continue
        at: JsonPath = ("sinks", i, "path") if stage.inline else ("sinks", i, "options", "path")
        try:
            target = doc.confine(written, what="audit log")
        except OutsideRepository:
            continue  # reported by the sink's own check
        if target in seen:
            line = doc.positions.value(("sinks", seen[target])).line
            yield doc.at_value(at, codes.SHARED_AUDIT_PATH,
                               f"two audit logs write `{doc.show(written)}` (first at line "
                               f"{line}); each needs its own file")
        seen.setdefault(target, i)


def _holds(policy: Policy, doc: Document) -> Iterator[Diagnostic]:
    """Every hold file exists, stays inside the repository and parses: a run that cannot
    read one would not know what it must not archive."""
    from archiver.governance.holds import read_hold_file

    for i, written in enumerate(policy.holds):
        try:
            target = doc.confine(written, what="hold file")
        except OutsideRepository as err:
            yield doc.at_value(("holds", i), codes.PATH_OUTSIDE, str(err))
            continue
        if target.is_dir():
            yield doc.at_value(("holds", i), codes.BAD_HOLD_FILE,
                               f"hold file `{doc.show(written)}` is a folder, not a file")
            continue
        try:
            read_hold_file(target, doc.show(written))
        except ConfigError as err:
            # Every problem of the file, each naming its own line there.
            for problem in (str(err), *err.details):
                yield doc.at_value(("holds", i), codes.BAD_HOLD_FILE, problem)


def _unknown_types(policy: Policy, doc: Document) -> Iterator[Diagnostic]:
    for one in registry.placed(policy):
        if one.stage is not None:
            continue
        broken = registry.load_error(one.item.type)
        close = difflib.get_close_matches(one.item.type, sorted(registry.known_types(one.kind)),
                                          n=1, cutoff=0.6)
        why = (f"it failed to load: {broken}" if broken
               else f"did you mean `{close[0]}`?" if close
               else "no installed plugin provides it")
        yield doc.at_value((*one.at, "type"), codes.UNKNOWN_PLUGIN,
                           f"unknown {one.kind} type `{one.item.type}`; {why}")


def _api(policy: Policy, doc: Document) -> Iterator[Diagnostic]:
    """Keys that belong to one API, and what each API needs."""
    connection, source = policy.connection, policy.source
    api = connection.api
    if api == CAMPAIGN_ARCHIVE:
        if connection.base_url is None:
            yield doc.at_key(("connection",), codes.MISSING_FOR_API,
                             "`connection.base_url` is required: the tenant's https URL, or "
                             f"`{EMBEDDED}` for the built-in simulator")
        cxone_only: list[tuple[tuple[str | int, ...], bool]] = [
            (("connection", "tenant_id"), connection.tenant_id is not None),
            (("connection", "auth_url"), connection.auth_url != DEFAULT_AUTH_URL),
            (("connection", "api_version"), connection.api_version != DEFAULT_API_VERSION),
            (("source", "type"), source.type is not None),
            (("source", "since"), source.since is not None),
            (("source", "call_list"), source.call_list is not None),
        ]
        cxone_only += [
            (("campaigns", i, "action"), c.action is not None)
            for i, c in enumerate(policy.campaigns)
        ]
        for path, written in cxone_only:
            if written:
                yield doc.at_key(path, codes.NOT_FOR_API,
                                 f"`{'.'.join(str(p) for p in path if isinstance(p, str))}` "
                                 f"is for `connection.api: {CXONE}`; this policy speaks "
                                 f"`{CAMPAIGN_ARCHIVE}`")
        return
    if connection.tenant_id is None and connection.base_url != EMBEDDED:
        yield doc.at_key(("connection",), codes.MISSING_FOR_API,
                         "`connection.tenant_id` is required for `api: cxone` (discovery "
                         "finds the tenant's API host from it)")
    attempts = source.type == "call_list_attempts"
    for i, campaign in enumerate(policy.campaigns):
        if campaign.action == "retire" and not attempts:
            yield doc.at_value(("campaigns", i, "action"), codes.RETIRE_NEEDS_ATTEMPTS,
                               "`action: retire` removes calling-list prospects and needs "
                               "`source.type: call_list_attempts` (with `source.call_list`)")
    if attempts:
        # The calling list's attempts are the policy's, not a campaign's: a second
        # campaign would list, and archive, every one of them again.
        for i, campaign in enumerate(policy.campaigns[1:], start=1):
            yield doc.at_value(("campaigns", i, "id"), codes.ONE_CAMPAIGN_PER_LIST,
                               f"campaign {campaign.id}: `source.type: call_list_attempts` "
                               "lists one calling list, whatever the campaign, so a policy "
                               "with it names one campaign (the one that dials the list); "
                               "write one policy per calling list")
    if attempts and not source.call_list:
        yield doc.at_value(("source", "type"), codes.MISSING_FOR_API,
                           "`source.type: call_list_attempts` needs `source.call_list`, the "
                           "calling list's id")
    problem = None if source.since is None else _since_problem(source.since)
    if problem is not None:
        yield doc.at_value(("source", "since"), codes.BAD_SINCE,
                           f"`source.since` {source.since!r} is not a UTC timestamp: {problem}")


def _since_problem(text: str) -> str | None:
    """What keeps ``text`` from being a UTC timestamp written like 2026-11-01T00:00:00Z
    that exists (no 30 February, no 25:00); None when it is one."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d{1,9})?Z", text)
    if m is None:
        return "write it like 2026-11-01T00:00:00Z"
    try:
        year, month, day, hour, minute, second = (int(part) for part in m.groups()[:6])
        datetime(year, month, day, hour, minute, second)
    except ValueError as err:
        return f"no such time ({err})"
    return None


def _fields(policy: Policy, doc: Document) -> Iterator[Diagnostic]:
    """A stage that reads a field the backend's listings do not provide would read None
    as if it were a value: refused at the stage, naming the field and the backend."""
    from archiver.backends.catalog import fields_of

    provided = fields_of(policy.connection.api, policy.source.type)
    where: str = policy.connection.api
    if policy.connection.api == CXONE:
        where += f" ({policy.source.type or 'completed_contacts'})"
    for one in registry.placed(policy):
        if one.stage is None:
            continue
        missing = sorted(one.stage.reads(one.item.options) - provided)
        if missing:
            names = ", ".join(f"`{m}`" for m in missing)
            hints = [one.stage.hints[m] for m in missing if m in one.stage.hints]
            hint = f" ({'; '.join(hints)})" if hints else ""
            yield doc.at_value((*one.at, "type"), codes.FIELD_NOT_PROVIDED,
                               f"the `{one.item.type}` {one.kind} reads {names}, which records "
                               f"of `api: {where}` do not have{hint}; nothing is read as a "
                               "default")


CHECKS: tuple[Check, ...] = (
    _campaigns, _stages, _required, check_outcomes, _connection, _audit_logs, _holds,
    _unknown_types, _api, _fields,
)

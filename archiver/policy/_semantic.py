"""Step 3: rules that span several keys, checked on the typed policy once the schema passed.

Each check is a generator of diagnostics; positions come from the JSON path of the
value at fault (the typed policy keeps the file's order, so indices match).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Literal

from archiver.errors import ConfigError, Diagnostic
from archiver.netutil import url_problem
from archiver.policy import _codes as codes
from archiver.policy._document import Document, JsonPath
from archiver.policy._outcomes import check_outcomes, known_outcomes
from archiver.policy._schema import STAGE_LISTS
from archiver.policy.model import (
    CAMPAIGN_ARCHIVE,
    CXONE,
    DEFAULT_API_VERSION,
    DEFAULT_AUTH_URL,
    EMBEDDED,
    AnonymizedFilter,
    AuditLogSink,
    FileSink,
    OutcomeFilter,
    PluginStage,
    Policy,
    RetentionTransform,
    WebhookSink,
)
from archiver.policy.paths import OutsideRepository

Check = Callable[[Policy, Document], Iterator[Diagnostic]]
StageKind = Literal["source", "filter", "transform", "sink"]

# Upper case by convention; it also tells a variable name from most pasted secrets.
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# archiver's own variables (CXONE_CLIENT_SECRET, ARCHIVER_SIGNING_KEY, ...): never a
# webhook's secret.
RESERVED_ENV_PREFIXES = ("CXONE_", "ARCHIVER_")


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
    """Outcomes every outcome filter approves; None when no outcome filter restricts them.

    A filter approving nothing is reported on its own and left out here, so that it does
    not also make every retention rule look wrong.
    """
    approved: frozenset[str] | None = None
    for spec in policy.filters:
        if isinstance(spec, OutcomeFilter) and spec.approved:
            codes_ = frozenset(spec.approved)
            approved = codes_ if approved is None else approved & codes_
    return approved


def _filters(policy: Policy, doc: Document) -> Iterator[Diagnostic]:
    anonymized: list[int] = []
    for i, spec in enumerate(policy.filters):
        if isinstance(spec, OutcomeFilter) and not spec.approved:
            yield doc.at_value(("filters", i, "approved"), codes.NOTHING_APPROVED,
                               "the outcome filter approves no outcome, so every attempt "
                               "would be skipped; list at least one outcome code")
        if isinstance(spec, AnonymizedFilter):
            anonymized.append(i)
    for i in anonymized[1:]:
        line = doc.positions.value(("filters", anonymized[0])).line
        yield doc.at_value(("filters", i, "type"), codes.TWO_ANONYMIZED,
                           f"only one `anonymized` filter is allowed (first at line {line})")
    if not anonymized and policy.connection.api == CAMPAIGN_ARCHIVE:
        # On cxone there is no flag to check (V018 refuses the filter there): the archive
        # is what our sinks keep, and they claim nothing about anonymization.
        # Archive bodies carry each record's own anonymized flag and the API takes only
        # anonymized attempts: the check must be in the policy, where a reviewer sees it.
        yield doc.at_key(("filters",), codes.NO_ANONYMIZED,
                         "no `anonymized` filter: add `- type: anonymized` with "
                         "`on_violation: quarantine` to `filters`, so that an attempt still "
                         "carrying personal data is never archived")


def _retention(policy: Policy, doc: Document) -> Iterator[Diagnostic]:
    approved = approved_outcomes(policy)
    known = known_outcomes(policy)
    retentions = [i for i, s in enumerate(policy.transforms) if isinstance(s, RetentionTransform)]
    for i in retentions[1:]:
        line = doc.positions.value(("transforms", retentions[0])).line
        yield doc.at_value(("transforms", i, "type"), codes.TWO_RETENTIONS,
                           f"only one `retention` transform is allowed (first at line {line})")
    for t in retentions:
        spec = policy.transforms[t]
        assert isinstance(spec, RetentionTransform)
        seen: dict[str, int] = {}
        for r, rule in enumerate(spec.rules):
            path: JsonPath = ("transforms", t, "rules", r, "outcome")
            if rule.outcome in seen:
                line = doc.positions.value(("transforms", t, "rules", seen[rule.outcome])).line
                yield doc.at_value(path, codes.DUPLICATE_RULE,
                                   f"a second retention rule for `{rule.outcome}` "
                                   f"(first at line {line})")
                continue
            seen[rule.outcome] = r
            if approved is not None and rule.outcome not in approved and rule.outcome in known:
                listed = ", ".join(sorted(approved))
                yield doc.at_value(path, codes.RULE_NOT_APPROVED,
                                   f"retention rule for `{rule.outcome}` never applies: the "
                                   f"outcome filter does not approve it (approved: {listed})")


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


def _sinks(policy: Policy, doc: Document) -> Iterator[Diagnostic]:
    audit_paths: dict[object, int] = {}
    for i, spec in enumerate(policy.sinks):
        if isinstance(spec, WebhookSink):
            problem = _url_problem(spec.url, f"`sinks[{i}].url`")
            if problem:
                yield doc.at_value(("sinks", i, "url"), codes.INSECURE_URL, problem)
            elif spec.url == EMBEDDED and policy.connection.base_url != EMBEDDED:
                yield doc.at_value(("sinks", i, "url"), codes.EMBEDDED_WEBHOOK,
                                   f"webhook `url: {EMBEDDED}` needs "
                                   f"`connection.base_url: {EMBEDDED}`")
            if not _ENV_NAME.match(spec.secret_env):
                # The value is not quoted: whoever wrote it may have pasted the secret itself.
                yield doc.at_value(("sinks", i, "secret_env"), codes.BAD_SECRET_ENV,
                                   "`secret_env` must name an environment variable in upper "
                                   "case (like DW_WEBHOOK_SECRET), never hold the secret itself")
            elif spec.secret_env.startswith(RESERVED_ENV_PREFIXES):
                # Else a policy could send the tenant's client secret to its own endpoint
                # as the HMAC key, where anyone holding the endpoint can recover it.
                yield doc.at_value(("sinks", i, "secret_env"), codes.RESERVED_SECRET_ENV,
                                   f"`secret_env` names `{spec.secret_env}`, one of archiver's "
                                   "own variables (every CXONE_* and ARCHIVER_* name is "
                                   "reserved for its credentials and settings); give the "
                                   "webhook secret a variable of its own, like "
                                   "DW_WEBHOOK_SECRET")
        elif isinstance(spec, FileSink):
            # Checked with sample values: every campaign id and date lands beside them.
            written = spec.path.replace("{campaign}", "campaign").replace("{date}", "date")
            try:
                doc.confine(written, what="archive folder")
            except OutsideRepository as err:
                yield doc.at_value(("sinks", i, "path"), codes.PATH_OUTSIDE, str(err))
            except (KeyError, ValueError):
                pass
        elif isinstance(spec, AuditLogSink):
            try:
                target = doc.confine(spec.path, what="audit log")
            except OutsideRepository as err:
                yield doc.at_value(("sinks", i, "path"), codes.PATH_OUTSIDE, str(err))
                continue
            if target in audit_paths:
                line = doc.positions.value(("sinks", audit_paths[target], "path")).line
                yield doc.at_value(("sinks", i, "path"), codes.SHARED_AUDIT_PATH,
                                   f"two audit logs write `{doc.show(spec.path)}` "
                                   f"(first at line {line}); each needs its own file")
            audit_paths.setdefault(target, i)
            if target.is_dir():
                yield doc.at_value(("sinks", i, "path"), codes.AUDIT_PATH_IS_DIR,
                                   f"audit log `{doc.show(spec.path)}` is a folder, not a file")


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
            yield doc.at_value(("holds", i), codes.BAD_HOLD_FILE, str(err))


def _plugins(policy: Policy, doc: Document) -> Iterator[Diagnostic]:
    # Imported here, not at the top: the registry imports the policy models.
    from archiver.engine import registry

    for list_key, kind in STAGE_LISTS.items():
        specs: tuple[object, ...] = getattr(policy, list_key)
        for i, spec in enumerate(specs):
            if not isinstance(spec, PluginStage):
                continue
            if spec.type in registry.known_types(kind):
                continue
            broken = registry.plugins().errors.get(spec.type)
            why = f"it failed to load: {broken}" if broken else "no installed plugin provides it"
            yield doc.at_value((list_key, i, "type"), codes.UNKNOWN_PLUGIN,
                               f"unknown {kind} type `{spec.type}`; {why}")


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
    if attempts and not source.call_list:
        yield doc.at_value(("source", "type"), codes.MISSING_FOR_API,
                           "`source.type: call_list_attempts` needs `source.call_list`, the "
                           "calling list's id")
    if source.since is not None and not _utc_timestamp(source.since):
        yield doc.at_value(("source", "since"), codes.BAD_SINCE,
                           f"`source.since` {source.since!r} is not a UTC timestamp; write "
                           "it like 2026-11-01T00:00:00Z")


def _utc_timestamp(text: str) -> bool:
    return re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z", text) is not None


def _fields(policy: Policy, doc: Document) -> Iterator[Diagnostic]:
    """A stage that reads a field the backend's listings do not provide would read None
    as if it were a value: refused at the stage, naming the field and the backend."""
    from archiver.backends.catalog import fields_of
    from archiver.engine import registry

    provided = fields_of(policy.connection.api, policy.source.type)
    where: str = policy.connection.api
    if policy.connection.api == CXONE:
        where += f" ({policy.source.type or 'completed_contacts'})"
    stage_lists: tuple[tuple[str, StageKind], ...] = (
        ("filters", "filter"), ("transforms", "transform"),
    )
    for list_key, kind in stage_lists:
        specs: tuple[object, ...] = getattr(policy, list_key)
        for i, spec in enumerate(specs):
            missing = sorted(registry.fields_read(kind, spec) - provided)
            if missing:
                names = ", ".join(f"`{m}`" for m in missing)
                stage = getattr(spec, "type", kind)
                hint = (" (set `use_record_value: false`)"
                        if isinstance(spec, RetentionTransform) and missing == ["retention_days"]
                        else "")
                yield doc.at_value((list_key, i, "type"), codes.FIELD_NOT_PROVIDED,
                                   f"the `{stage}` {kind} reads {names}, which records of "
                                   f"`api: {where}` do not have{hint}; nothing is read as "
                                   "a default")


CHECKS: tuple[Check, ...] = (
    _campaigns, _filters, check_outcomes, _retention, _connection, _sinks, _holds, _plugins, _api,
    _fields,
)

"""Policy test files: fixture attempts and the decision a policy must make for each.

A policy ``NAME.yaml`` keeps its tests beside it in ``NAME.test.yaml`` (JSON Schema:
``schemas/policy-test.schema.json``)::

    # yaml-language-server: $schema=../schemas/policy-test.schema.json
    version: 1
    policy: survey-retention.yaml   # optional, inside the repository; default: NAME.yaml beside
    defaults:                       # optional; every case's attempt starts from these fields
      contactId: 0b6f0a52-5c1e-4c5b-9d3e-7f1d2a9c4e11
      disposition: COMPLETED
      duration: 42
      anonymized: true
    cases:
      - name: survey taken is archived for two years
        attempt: {id: att-1, outcomeCode: SURVEY_TAKEN}
        expect: {decision: archive, retention_days: 730}
      - name: a record without contactId is quarantined
        attempt: {id: att-2, outcomeCode: NO_ANSWER}
        omit: [contactId]
        expect: {decision: quarantine, reason: "`contactId` is missing"}
      - name: the warehouse hears which campaign
        campaign: a1b2c3d4-e5f6-7890-abcd-ef1234567890
        attempt: {id: att-3, outcomeCode: BUSY}
        expect:
          decision: archive
          retention_days: 365
          webhook: {campaign_id: a1b2c3d4-e5f6-7890-abcd-ef1234567890}
          archive: {items: [{retentionPeriodDays: 365}]}

A case's ``attempt`` is the record exactly as the API's listing would serve it
(camelCase keys), merged key by key over ``defaults``; ``omit`` then removes keys.
Any value is allowed, so malformed records (a null, a string where a number
belongs, a missing key, not an object at all) can be tested. ``campaign`` picks
one of the policy's campaigns (default: the first).

``expect.decision`` is ``archive`` (with ``retention_days``), ``skip``,
``quarantine`` or ``abort`` (each with ``reason``, matched as a substring of the
actual reason; ``abort`` is an ``anonymized`` filter with ``on_violation: abort``
stopping the campaign). For ``archive`` a case may also expect fields of the
payloads the attempt would produce as a batch of one: ``archive`` (the archive
request body), ``webhook`` (the ``batch_archived`` event of every webhook sink),
``audit_log`` (the record of every audit log sink, before the log adds its chain
fields). These match as a subset: every key given must be there with an equal
value; lists must have the same length and match item by item. The values a
run would take from the API or the clock are fixed in tests: see
:data:`archiver.review.testrun.TEST_IDS`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from archiver.errors import Diagnostic
from archiver.policy._document import Positions
from archiver.policy._loader import POLICY_SUFFIXES, TEST_SUFFIXES
from archiver.policy._yaml import parse
from archiver.policy.paths import OutsideRepository, confine, repository_root
from archiver.regular_file import read_regular
from archiver.review.schema_errors import describe, relevant

MAX_BYTES = 4 * 1024 * 1024

# Diagnostic codes of test files (the YAML reader's own use the policy's P-codes).
UNREADABLE = "F001"
SCHEMA = "F002"
DUPLICATE_CASE = "F003"
UNKNOWN_CAMPAIGN = "F004"
NO_POLICY = "F005"
POLICY_OUTSIDE = "F007"

SCHEMA_DOC: dict[str, Any] = json.loads(
    resources.files(__package__).joinpath("policy-test.schema.json").read_text(encoding="utf-8")
)
_VALIDATOR = Draft202012Validator(SCHEMA_DOC)


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    line: int  # where the case starts in its file
    campaign: str | None
    attempt: Any  # the record as listed, defaults merged in and omitted keys removed
    expect: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TestFile:
    path: Path
    policy_path: Path
    cases: tuple[Case, ...]
    positions: Positions

    __test__ = False  # not a pytest test class, whatever its name says

    def at(self, path: tuple[str | int, ...], code: str, message: str) -> Diagnostic:
        spot = self.positions.value(path)
        return Diagnostic(str(self.path), spot.line, spot.col, code, message)


def is_test_file(path: Path) -> bool:
    return path.name.endswith(TEST_SUFFIXES)


def policy_beside(test_path: Path) -> Path:
    """``NAME.yaml`` (or ``NAME.yml`` when only that exists) for ``NAME.test.yaml``."""
    stem = next(test_path.name[: -len(s)] for s in TEST_SUFFIXES if test_path.name.endswith(s))
    candidates = [test_path.with_name(stem + suffix) for suffix in POLICY_SUFFIXES]
    return next((c for c in candidates if c.is_file()), candidates[0])


def load_test_file(path: Path) -> TestFile | list[Diagnostic]:
    """The test file at ``path``, or every problem found in it (file:line:col)."""
    file = str(path)
    try:
        # At most a byte past the limit, and never a pipe or device (which would block or
        # never end).
        raw = read_regular(path, MAX_BYTES)
    except OSError as err:
        return [Diagnostic(file, 1, 1, UNREADABLE, f"cannot read: {err.strerror or err}")]
    if len(raw) > MAX_BYTES:
        return [Diagnostic(file, 1, 1, UNREADABLE, "larger than 4 MiB; split the cases")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return [Diagnostic(file, raw[: err.start].count(b"\n") + 1, 1, UNREADABLE, "not UTF-8 text")]
    parsed = parse(text, file, "policy test file")
    if isinstance(parsed, list):
        return parsed
    data, positions = parsed.data, parsed.positions
    errors = relevant(list(_VALIDATOR.iter_errors(data)))
    problems = [describe(error, file, positions, SCHEMA) for error in errors]
    if problems:
        return sorted(problems, key=lambda d: (d.line, d.col))
    policy_written = data.get("policy")
    policy_path = path.parent / policy_written if policy_written else policy_beside(path)
    test = TestFile(path, policy_path, _cases(data, positions), positions)
    if policy_written:
        # The policy a test file names is read, and what it holds is quoted in errors:
        # like every path a policy names, it stays inside the repository (symlinks followed).
        try:
            confine(repository_root(path.parent), path.parent, policy_written, what="policy")
        except OutsideRepository as err:
            return [test.at(("policy",), POLICY_OUTSIDE, str(err))]
    problems = _duplicate_names(test)
    if not policy_path.is_file():
        where = ("policy",) if policy_written else ()
        problems.append(test.at(where, NO_POLICY, f"policy file {policy_path} not found"))
    return problems or test


def _cases(data: dict[str, Any], positions: Positions) -> tuple[Case, ...]:
    defaults = data.get("defaults", {})
    out = []
    for i, raw in enumerate(data["cases"]):
        attempt = raw["attempt"]
        if isinstance(attempt, dict):
            attempt = {**copy.deepcopy(defaults), **attempt}
            for key in raw.get("omit", ()):
                attempt.pop(key, None)
        out.append(
            Case(
                name=raw["name"],
                line=positions.value(("cases", i)).line,
                campaign=raw.get("campaign"),
                attempt=attempt,
                expect=raw["expect"],
            )
        )
    return tuple(out)


def _duplicate_names(test: TestFile) -> list[Diagnostic]:
    seen: dict[str, int] = {}
    out = []
    for i, case in enumerate(test.cases):
        if case.name in seen:
            out.append(test.at(("cases", i, "name"), DUPLICATE_CASE,
                               f"case name `{case.name}` is used twice (first at line {seen[case.name]})"))
        else:
            seen[case.name] = test.positions.value(("cases", i, "name")).line
    return out


def unknown_campaigns(test: TestFile, campaign_ids: list[str]) -> list[Diagnostic]:
    """Cases naming a campaign the policy does not list."""
    known = set(campaign_ids)
    return [
        test.at(("cases", i, "campaign"), UNKNOWN_CAMPAIGN,
                f"campaign `{case.campaign}` is not one of the policy's campaigns")
        for i, case in enumerate(test.cases)
        if case.campaign is not None and case.campaign not in known
    ]

"""``test``: run the cases of policy test files and compare decisions with expectations."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from archiver.errors import Diagnostic, PolicyError, TemplateError
from archiver.policy import load_policy
from archiver.policy._codes import LINK_NOT_READ
from archiver.policy._loader import TEST_SUFFIXES
from archiver.policy.files import link_problem, policy_test_files
from archiver.policy.model import Policy
from archiver.review.match import mismatches, project
from archiver.review.samples import ARCHIVE, Payload, SampleIds, render_payloads
from archiver.review.testfile import (
    Case,
    TestFile,
    is_test_file,
    load_test_file,
    unknown_campaigns,
)
from archiver.review.verdicts import Decider, Verdict

# The values a run takes from the API or the clock, fixed so payload expectations hold.
TEST_IDS = SampleIds(
    run_id="test-run",
    batch_id="test-batch",  # the batch event's event_id is "evt-test-batch"
    timestamp="1970-01-01T00:00:00.000Z",
    migration_job_id="test-job",
    job_status="TEST",
)
PAYLOAD_KEYS = (ARCHIVE, "webhook", "audit_log")
NO_TESTS = "F006"


@dataclass
class CaseResult:
    case: Case
    verdict: Verdict
    problems: list[str] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass
class FileResult:
    path: Path
    cases: list[CaseResult] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)


def find_test_files(paths: Iterable[Path]) -> tuple[list[Path], list[Diagnostic]]:
    """Test files named by ``paths``: test files, policies (their NAME.test.yaml), folders."""
    found: list[Path] = []
    errors: list[Diagnostic] = []
    for path in paths:
        if path.is_dir():
            inside = policy_test_files(path)
            if not inside:
                errors.append(Diagnostic(str(path), 1, 1, NO_TESTS,
                                         "no policy test files (*.test.yaml) in this folder"))
            for file in inside:
                refused = link_problem(file, path)
                if refused:
                    errors.append(Diagnostic(str(file), 1, 1, LINK_NOT_READ, refused))
                else:
                    found.append(file)
        elif is_test_file(path) or not path.exists():
            found.append(path)
        else:
            beside = _tests_beside(path)
            if beside is None:
                errors.append(Diagnostic(str(path), 1, 1, NO_TESTS,
                                         f"no test file beside this policy (expected {path.stem}.test.yaml)"))
            else:
                found.append(beside)
    seen: set[Path] = set()
    unique = []
    for file in found:
        # realpath, not resolve(): a path in a loop of links is reported when it is read,
        # and resolve() raises RuntimeError for it.
        real = Path(os.path.realpath(file))
        if real not in seen:
            seen.add(real)
            unique.append(file)
    return unique, errors


def _tests_beside(policy: Path) -> Path | None:
    for suffix in TEST_SUFFIXES:
        candidate = policy.with_name(policy.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def run_test_file(path: Path) -> FileResult:
    result = FileResult(path)
    loaded = load_test_file(path)
    if isinstance(loaded, list):
        result.errors = loaded
        return result
    try:
        policy = load_policy(loaded.policy_path)
    except PolicyError as err:
        result.errors = list(err.diagnostics)
        return result
    result.errors = unknown_campaigns(loaded, [c.id for c in policy.campaigns])
    if result.errors:
        return result
    deciders: dict[str, Decider] = {}
    for case in loaded.cases:
        campaign = case.campaign or policy.campaigns[0].id
        decider = deciders.get(campaign) or deciders.setdefault(campaign, Decider(policy, campaign))
        result.cases.append(run_case(policy, decider, loaded, case))
    return result


def run_case(policy: Policy, decider: Decider, test: TestFile, case: Case) -> CaseResult:
    verdict = decider.decide(case.attempt, fallback_id=case.name)
    result = CaseResult(case, verdict)
    expect = case.expect
    expected_doc: dict[str, Any] = {"decision": expect["decision"]}
    actual_doc: dict[str, Any] = {"decision": verdict.kind}
    decided_as_expected = verdict.kind == expect["decision"]
    if not decided_as_expected:
        result.problems.append(f"decision: expected {expect['decision']}, got {verdict.kind}")
    if "reason" in expect:
        wanted = expect["reason"]
        expected_doc["reason"] = f"contains {wanted!r}"
        if wanted in verdict.reason:
            actual_doc["reason"] = expected_doc["reason"]
        else:
            actual_doc["reason"] = verdict.reason
            if decided_as_expected:
                result.problems.append(
                    f"reason: expected to contain {wanted!r}, got {verdict.reason!r}"
                )
    elif verdict.reason:
        actual_doc["reason"] = verdict.reason
    if "retention_days" in expect:
        expected_doc["retention_days"] = expect["retention_days"]
        if decided_as_expected and verdict.retention_days != expect["retention_days"]:
            result.problems.append(
                f"retention_days: expected {expect['retention_days']}, got {verdict.retention_days}"
            )
    if verdict.retention_days is not None:
        actual_doc["retention_days"] = verdict.retention_days
    wanted_payloads = {k: expect[k] for k in PAYLOAD_KEYS if k in expect}
    if wanted_payloads and verdict.line is not None:
        _check_payloads(policy, decider.campaign_id, verdict, wanted_payloads, result,
                        expected_doc, actual_doc)
    if result.problems:
        result.diff = _diff(expected_doc, actual_doc)
    return result


def _check_payloads(
    policy: Policy, campaign_id: str, verdict: Verdict, wanted: dict[str, Any],
    result: CaseResult, expected_doc: dict[str, Any], actual_doc: dict[str, Any],
) -> None:
    assert verdict.line is not None
    try:
        rendered = render_payloads(policy, campaign_id, [verdict.line], {}, TEST_IDS,
                                   events=("batch_archived",))
    except TemplateError as err:
        result.problems.append(f"payloads: {err}")
        return
    for key, expected in wanted.items():
        found = [p for p in rendered if p.sink == key]
        if not found:
            result.problems.append(f"{key}: the policy has no {key} sink")
            continue
        for payload in found:
            label = _label(payload, several=len(found) > 1)
            expected_doc[label] = expected
            actual_doc[label] = project(expected, payload.body)
            result.problems.extend(mismatches(expected, payload.body, label))


def _label(payload: Payload, *, several: bool) -> str:
    if payload.index is None or not several:
        return payload.sink
    return f"{payload.sink}(sinks[{payload.index}])"


def _dump(doc: dict[str, Any]) -> list[str]:
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)
    return text.splitlines()


def _diff(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    return list(difflib.unified_diff(
        _dump(expected), _dump(actual), fromfile="expected", tofile="actual", lineterm="", n=20,
    ))

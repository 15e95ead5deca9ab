"""``test`` output, read like pytest's: a line per case, then the failures, then a summary."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from archiver.errors import Diagnostic
from archiver.report.redact import printable
from archiver.review.show import shown_path
from archiver.review.testrun import CaseResult, FileResult

Echo = Callable[[str], None]


WIDTH = 80  # fixed, so the output is the same on every terminal and in CI logs


def _rule(title: str, char: str) -> str:
    width = WIDTH
    inner = f" {title} " if title else ""
    side = max(3, (width - len(inner)) // 2)
    return f"{char * side}{inner}{char * side}"


def case_id(result: FileResult, case: CaseResult) -> str:
    return f"{shown_path(result.path)}::{case.case.name}"


def report(
    results: Sequence[FileResult], extra_errors: Sequence[Diagnostic], echo_raw: Echo
) -> tuple[int, int, int]:
    """Print everything; returns (passed, failed, errors), errors counted per file or path.

    Every line is shown escaped: case names, ids and reasons are test-file text, and
    a newline or terminal escape in one must not make a line of its own."""

    def echo(line: str) -> None:
        echo_raw(printable(line))

    passed = failed = 0
    errors = list(extra_errors)
    erroneous = len({d.file for d in extra_errors})
    for result in results:
        if result.errors:
            echo(f"{shown_path(result.path)} ERROR")
            errors.extend(result.errors)
            erroneous += 1
        for case in result.cases:
            echo(f"{case_id(result, case)} {'PASSED' if case.passed else 'FAILED'}")
            passed += case.passed
            failed += not case.passed
    if errors:
        echo("")
        echo(_rule("ERRORS", "="))
        for diag in errors:
            echo(diag.format())
    failures = [(r, c) for r in results for c in r.cases if not c.passed]
    if failures:
        echo("")
        echo(_rule("FAILURES", "="))
        for result, case in failures:
            _failure(result, case, echo)
    echo(_rule("", "="))
    echo(summary(passed, failed, erroneous))
    return passed, failed, erroneous


def _failure(result: FileResult, case: CaseResult, echo: Echo) -> None:
    echo(_rule(case_id(result, case), "_"))
    echo(f"{shown_path(result.path)}:{case.case.line}: attempt "
         + json.dumps(case.case.attempt, ensure_ascii=False))
    for problem in case.problems:
        echo(f"E   {problem}")
    for line in case.diff:
        echo(line)
    echo("")


def summary(passed: int, failed: int, errors: int) -> str:
    """``N passed, N failed`` (and ``, N errors`` when there are any), alone on its line."""
    line = f"{passed} passed, {failed} failed"
    if errors:
        line += f", {errors} {'error' if errors == 1 else 'errors'}"
    return line

"""Reviewing a policy before it runs: ``plan``, ``test`` and ``diff``.

All three decide attempts with the engine's own pipeline (``verdicts``) and render
payloads with the policy's own templates (``samples``); none of them sends a call
that changes state.

- ``plan``: the policy against what the API lists now (``listing``: token and GETs only).
- ``testfile``/``testrun``: fixture attempts with expected decisions, kept beside a
  policy as ``NAME.test.yaml`` (format in :mod:`archiver.review.testfile`).
- ``diff``: two policies over the same attempts (``fixtures``).
"""

from __future__ import annotations

from archiver.review.diff import PolicyDiff, diff_json, diff_policies
from archiver.review.fixtures import Fixtures, from_embedded_simulator, from_file, generated
from archiver.review.plan import Plan, plan_json, plan_policy
from archiver.review.testrun import FileResult, find_test_files, run_test_file
from archiver.review.verdicts import Decider, Verdict

__all__ = [
    "Decider",
    "FileResult",
    "Fixtures",
    "Plan",
    "PolicyDiff",
    "Verdict",
    "diff_json",
    "diff_policies",
    "find_test_files",
    "from_embedded_simulator",
    "from_file",
    "generated",
    "plan_json",
    "plan_policy",
    "run_test_file",
]

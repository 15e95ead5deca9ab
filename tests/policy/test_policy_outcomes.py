"""An outcome code no attempt carries is a typo that silently stops archiving an outcome:
it is an error, with the nearest known code suggested."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from archiver.cli import cli
from archiver.cxone import wire
from archiver.errors import EXIT_CONFIG
from archiver.policy import load_policy
from archiver.simulator.config import DEFAULT_OUTCOME_MIX
from tests.support import policy_dict, run_cli, sim_env, write_policy

from ._texts import VALID, line_of
from .conftest import Writer

CAMPAIGN = "dddddddd-0000-4000-8000-000000000016"
APPROVED = "approved: [SURVEY_TAKEN, NO_ANSWER]"


def _validate(path: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["validate", str(path)])
    return result.exit_code, result.output.splitlines()


@pytest.mark.parametrize(("written", "meant"), [("no_answer", "NO_ANSWER"),
                                                ("NO_ANSWR", "NO_ANSWER"),
                                                ("Survey_Taken", "SURVEY_TAKEN")])
def test_a_misspelt_approved_outcome_is_an_error_with_a_suggestion(
    write: Writer, written: str, meant: str
) -> None:
    text = VALID.replace(APPROVED, f"approved: [SURVEY_TAKEN, {written}]")
    path = write(text)

    code, lines = _validate(path)

    assert code == EXIT_CONFIG
    col = text.splitlines()[line_of(text, written) - 1].index(written) + 1
    assert lines[0].startswith(f"{path}:{line_of(text, written)}:{col}: V017 unknown outcome "
                               f"code `{written}`; did you mean `{meant}`?")
    assert "source.extra_outcomes" in lines[0]
    assert lines[1] == "1 error in 1 of 1 policy"


def test_an_unknown_retention_rule_outcome_is_reported_once(write: Writer) -> None:
    text = VALID.replace("- outcome: SURVEY_TAKEN", "- outcome: SURVEY_TAKN")
    path = write(text)

    code, lines = _validate(path)

    assert code == EXIT_CONFIG
    assert lines[0].startswith(f"{path}:{line_of(text, 'SURVEY_TAKN')}:18: V017 unknown "
                               "outcome code `SURVEY_TAKN`; did you mean `SURVEY_TAKEN`?")
    assert lines[1] == "1 error in 1 of 1 policy"  # not also "not approved" (V002)


def test_a_code_like_no_other_gets_the_known_list_and_no_guess(write: Writer) -> None:
    text = VALID.replace(APPROVED, "approved: [SURVEY_TAKEN, XYZZY]")

    code, lines = _validate(write(text))

    assert code == EXIT_CONFIG
    assert "did you mean" not in lines[0]
    assert f"known: {', '.join(wire.KNOWN_OUTCOMES)}" in lines[0]


def test_extra_outcomes_extend_the_known_codes_exactly(write: Writer) -> None:
    text = VALID.replace(APPROVED, "approved: [SURVEY_TAKEN, SALE_CLOSED]").replace(
        "campaigns:", "source:\n  extra_outcomes: [SALE_CLOSED]\ncampaigns:")
    text = text.replace("- outcome: SURVEY_TAKEN", "- outcome: SALE_CLOSED")

    assert _validate(write(text)) == (0, ["1 policy valid"])
    assert load_policy(write(text)).source.extra_outcomes == ("SALE_CLOSED",)

    lower = text.replace("approved: [SURVEY_TAKEN, SALE_CLOSED]",
                         "approved: [SURVEY_TAKEN, sale_closed]")
    code, lines = _validate(write(lower))
    assert code == EXIT_CONFIG
    assert "unknown outcome code `sale_closed`; did you mean `SALE_CLOSED`?" in lines[0]


def test_known_outcomes_are_the_codes_the_simulated_backend_reports() -> None:
    assert set(wire.KNOWN_OUTCOMES) == set(DEFAULT_OUTCOME_MIX)
    assert len(set(wire.KNOWN_OUTCOMES)) == len(wire.KNOWN_OUTCOMES)


def test_run_refuses_an_unknown_outcome_before_any_request(tmp_path: Path, start_sim) -> None:
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=20)
    doc = policy_dict([CAMPAIGN])
    doc["filters"][0]["approved"] = ["SURVEY_TAKEN", "no_answer"]
    policy = write_policy(tmp_path / "p.yaml", doc)

    result = run_cli(["run", str(policy), "--state", str(tmp_path / "s")], sim_env(sim))

    assert result.returncode == EXIT_CONFIG, result.stderr
    assert "V017 unknown outcome code `no_answer`; did you mean `NO_ANSWER`?" in result.stderr
    assert [r for r in sim.requests() if not r["path"].startswith("/_sim/")] == []


def test_many_unknown_codes_are_each_reported_quickly_in_lines_of_bounded_length(
    write: Writer,
) -> None:
    # A policy of some 50 KB: 3,000 extra codes and 3,000 unknown approved ones. Each
    # unknown code was compared with every known one for a suggestion and listed them
    # all: 27 s and 72 MB of output (30,000 of each, within the 1 MiB limit: hours and
    # gigabytes).
    n = 3000
    extra = ", ".join(f"X{i:05d}" for i in range(n))
    unknown = ", ".join(f"Y{i:05d}" for i in range(n))
    text = VALID.replace(APPROVED, f"approved: [SURVEY_TAKEN, {unknown}]").replace(
        "campaigns:", f"source:\n  extra_outcomes: [{extra}]\ncampaigns:")
    path = write(text)

    started = time.monotonic()
    code, lines = _validate(path)

    assert code == EXIT_CONFIG
    assert time.monotonic() - started < 10
    assert lines[-1] == f"{n} errors in 1 of 1 policy"
    assert all(" V017 unknown outcome code `Y" in line for line in lines[:-1])
    assert max(len(line) for line in lines) < 1000
    assert "X00000, X00001" in lines[0] and f"({n + 7 - 20} more)" in lines[0]

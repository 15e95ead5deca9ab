"""What a policy must say for itself: which API it runs against, that it checks
anonymization, and a webhook secret of its own. `validate` and `run` refuse alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from archiver.cli import cli
from archiver.errors import EXIT_CONFIG
from tests.support import policy_dict, run_cli, sim_env, write_policy

from ._texts import VALID, line_of
from .conftest import Writer

CAMPAIGN = "dddddddd-0000-4000-8000-000000000015"
CONNECTION = "connection:\n  base_url: embedded\n  timeout_seconds: 30\n"
ANONYMIZED = "  - type: anonymized\n"


def _validate(path: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["validate", str(path)])
    return result.exit_code, result.output.splitlines()


def _refused_before_any_request(tmp_path: Path, start_sim: Any, doc: dict[str, Any]) -> str:
    """`archiver run` on ``doc``: exit 78, nothing sent; returns stderr."""
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=20)
    policy = write_policy(tmp_path / "p.yaml", doc)
    result = run_cli(["run", str(policy), "--state", str(tmp_path / "s")], sim_env(sim))
    assert result.returncode == EXIT_CONFIG, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert [r for r in sim.requests() if not r["path"].startswith("/_sim/")] == []
    assert f"{policy}:" in result.stderr
    return result.stderr


# -- connection and connection.base_url are required ---------------------------------


def test_a_policy_without_connection_is_refused_with_what_to_write(write: Writer) -> None:
    text = VALID.replace(CONNECTION, "")
    path = write(text)

    code, lines = _validate(path)

    assert code == EXIT_CONFIG
    assert lines[0].startswith(f"{path}:1:1: S002 missing required key `connection`")
    assert "`base_url: embedded` for the built-in simulator" in lines[0]
    assert "https URL" in lines[0]


def test_a_connection_without_base_url_is_refused_at_the_connection_key(write: Writer) -> None:
    text = VALID.replace("  base_url: embedded\n", "")
    path = write(text)

    code, lines = _validate(path)

    assert code == EXIT_CONFIG
    assert lines[0].startswith(
        f"{path}:{line_of(text, 'connection:')}:1: S002 `connection` is missing required key "
        "`base_url`; write `base_url: embedded` for the built-in simulator, or the tenant's "
        "https URL"
    )


def test_run_without_connection_never_falls_back_to_the_simulator(tmp_path, start_sim) -> None:
    doc = policy_dict([CAMPAIGN])
    del doc["connection"]
    assert " S002 missing required key `connection`" in _refused_before_any_request(
        tmp_path, start_sim, doc)


# -- an anonymized filter is required ------------------------------------------------


@pytest.mark.parametrize("filters", ["filters:\n  - type: outcome\n    approved: [NO_ANSWER]\n",
                                     "filters: []\n", ""])
def test_a_policy_without_an_anonymized_filter_is_refused(write: Writer, filters: str) -> None:
    start = VALID.index("filters:\n")
    end = VALID.index("transforms:\n")
    text = VALID[:start] + filters + VALID[end:].replace("SURVEY_TAKEN", "NO_ANSWER")
    path = write(text)

    code, lines = _validate(path)

    assert code == EXIT_CONFIG, lines
    line = line_of(text, "filters:") if filters else 1
    (found,) = [x for x in lines if " V016 " in x]
    assert found.startswith(f"{path}:{line}:1: V016 no `anonymized` filter: add "
                            "`- type: anonymized` with `on_violation: quarantine`")


def test_run_refuses_a_policy_that_never_checks_anonymization(tmp_path, start_sim) -> None:
    doc = policy_dict([CAMPAIGN])
    doc["filters"] = [f for f in doc["filters"] if f["type"] != "anonymized"]
    assert " V016 " in _refused_before_any_request(tmp_path, start_sim, doc)


# -- secret_env never names archiver's own variables ---------------------------------


@pytest.mark.parametrize("name", ["CXONE_CLIENT_ID", "CXONE_CLIENT_SECRET", "CXONE_ACCESS_KEY_ID",
                                  "CXONE_ACCESS_KEY_SECRET", "CXONE_BASE_URL",
                                  "ARCHIVER_SIGNING_KEY", "ARCHIVER_STATE_URL", "CXONE_ANYTHING",
                                  "ARCHIVER_FAILPOINT"])
def test_secret_env_may_not_name_archivers_own_variables(write: Writer, name: str) -> None:
    text = VALID.replace("secret_env: DEMO_WEBHOOK_SECRET", f"secret_env: {name}")
    path = write(text)

    code, lines = _validate(path)

    assert code == EXIT_CONFIG
    assert lines[0].startswith(f"{path}:{line_of(text, 'secret_env')}:17: V015 `secret_env` "
                               f"names `{name}`, one of archiver's own variables")


@pytest.mark.parametrize("name", ["DW_WEBHOOK_SECRET", "MY_CXONE_HOOK", "ARCHIVERS_HOOK"])
def test_other_secret_env_names_are_accepted(write: Writer, name: str) -> None:
    text = VALID.replace("secret_env: DEMO_WEBHOOK_SECRET", f"secret_env: {name}")
    assert _validate(write(text)) == (0, ["1 policy valid"])


def test_run_refuses_to_sign_webhooks_with_the_client_secret(tmp_path, start_sim) -> None:
    doc = policy_dict([CAMPAIGN])
    doc["sinks"] = [{"type": "webhook", "url": "embedded", "secret_env": "CXONE_CLIENT_SECRET"}]
    stderr = _refused_before_any_request(tmp_path, start_sim, doc)
    assert " V015 " in stderr
    assert "test-client-secret" not in stderr

from __future__ import annotations

import subprocess
import sys

import click
import pytest
import requests
from click.testing import CliRunner

from archiver.commands.simulate import command
from archiver.simulator import Simulator


def test_help_explains_the_options() -> None:
    result = CliRunner().invoke(command, ["--help"])
    assert result.exit_code == 0
    for option in ("--port", "--host", "--seed", "--campaign", "--campaigns", "--attempts",
                   "--unanonymized-rate", "--malformed-rate", "--malformed-kind", "--rate-limit",
                   "--no-retry-after", "--error-rate", "--token-lifetime", "--latency-ms", "--hang-rate",
                   "--hang-seconds", "--active", "--partial-failure-rate", "--client-id",
                   "--client-secret", "--webhook-secret"):
        assert option in result.output


def test_a_malformed_kind_it_does_not_know_is_refused() -> None:
    result = CliRunner().invoke(command, ["--malformed-kind", "missing_everything"])
    assert result.exit_code == 2
    assert "missing_id" in result.output and "empty_record" in result.output


def test_refuses_a_non_loopback_host() -> None:
    result = CliRunner().invoke(command, ["--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "loopback" in result.output


def test_simulator_refuses_a_non_loopback_host_too() -> None:
    with pytest.raises(ValueError, match="loopback"):
        Simulator(host="192.0.2.1")


def test_module_runner_announces_its_url_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "archiver.simulator", "--port", "0", "--campaign", "c-1",
         "--attempts", "25", "--active", "c-1", "--client-secret", "pw"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("listening on http://127.0.0.1:")
        base = first.removeprefix("listening on ")
        form = {"grant_type": "client_credentials", "client_id": "demo", "client_secret": "pw"}
        token = requests.post(f"{base}/oauth/token", data=form, timeout=5).json()["access_token"]
        listing = requests.get(
            f"{base}/api/v2/campaigns/c-1/attempts",
            params={"status": "completed", "limit": "100", "offset": "0"},
            headers={"Authorization": f"Bearer {token}"}, timeout=5,
        )
        assert len(listing.json()) == 25
        stats = requests.get(f"{base}/_sim/stats", timeout=5).json()
        assert stats["campaigns"]["c-1"]["status"] == "ACTIVE"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "simulator stopped" in out



def test_the_readme_example_plans_against_the_simulator() -> None:
    """README's "The simulator" section, as written (on a free port): `archiver simulate`,
    then `archiver plan` with the credentials it gives, lists every campaign."""
    import json
    import os
    import re
    import shlex

    from tests.support import REPO

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## The simulator"):]
    lines = section[section.index("```bash") + 7:section.index("```", section.index("```bash") + 7)]
    simulate_line, plan_line = lines.strip().splitlines()
    simulate_args = shlex.split(simulate_line)
    assert simulate_args[:2] == ["archiver", "simulate"], simulate_line
    simulate_args[simulate_args.index("--port") + 1] = "0"
    *assignments, _, _, policy = shlex.split(plan_line)
    env_given = dict(a.split("=", 1) for a in assignments)
    assert set(env_given) == {"CXONE_BASE_URL", "CXONE_CLIENT_ID", "CXONE_CLIENT_SECRET"}
    attempts = int(simulate_args[simulate_args.index("--attempts") + 1])

    proc = subprocess.Popen(
        [sys.executable, "-m", "archiver", *simulate_args[1:]],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip().removeprefix("listening on ")
        announced = proc.stdout.readline()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
        planned = subprocess.run(
            [sys.executable, "-m", "archiver", "plan", policy, "--format", "json"],
            env={**env, **env_given, "CXONE_BASE_URL": base}, cwd=REPO,
            capture_output=True, text=True, timeout=120,
        )
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["totals"]["listed"] == attempts * len(plan["campaigns"]), plan["totals"]
    # The simulator names the credentials it accepts.
    secret = env_given["CXONE_CLIENT_SECRET"]
    assert re.search(rf"client_id={env_given['CXONE_CLIENT_ID']}\b", announced), announced
    assert f"client_secret={secret}" in announced, announced


def test_options_the_cxone_personality_would_ignore_are_refused() -> None:
    """Before, `--api cxone --campaign abc --active x` served the cxone simulator's own
    campaigns, none dialing, as if the options had been read."""
    result = CliRunner().invoke(
        command, ["--api", "cxone", "--campaign", "abc", "--active", "x", "--port", "0"]
    )
    assert result.exit_code == 2, result.output
    assert "--active, --campaign: not an option of --api cxone" in result.output
    assert "--rate-limit" in result.output  # what it does take


def test_the_api_help_names_exactly_the_options_the_cxone_personality_takes() -> None:
    import re

    from archiver.commands.simulate import CXONE_OPTIONS

    params = {p.name: p for p in command.params if isinstance(p, click.Option)}
    help_text = params["api"].help or ""
    named = set(re.findall(r"--[a-z-]+", help_text))
    assert named == {params[name].opts[0] for name in CXONE_OPTIONS - {"api"}}


@pytest.mark.parametrize("args, option", [
    (["--port", "-1"], "--port"),
    (["--port", "65536"], "--port"),
    (["--port", "0", "--attempts", "99999999999999999999999"], "--attempts"),
    (["--port", "0", "--request-log", "99999999999999999999999"], "--request-log"),
    (["--port", "0", "--request-log", "-1"], "--request-log"),
    (["--port", "0", "--campaigns", "99999999999999999999999"], "--campaigns"),
    (["--api", "cxone", "--port", "0", "--campaigns", "99999999999999999999999"], "--campaigns"),
])
def test_sizes_out_of_range_are_usage_errors_naming_the_option(args, option) -> None:
    # They were an OverflowError traceback (port, attempts, request log), "maxlen must be
    # non-negative", or a simulator generating campaign ids without end.
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert f"Invalid value for '{option}'" in result.output
    assert "is not in the range" in result.output

"""End to end: where the secret goes, and the one line a person reads when a server
refuses the credentials or cannot be reached at all."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from archiver.cxone import wire
from tests.cxone.server import FakeCxone
from tests.support import (
    APPROVED,
    CLIENT_ID,
    CLIENT_SECRET,
    policy_dict,
    refused_port,
    run_cli,
    sim_env,
    write_policy,
)

CAMPAIGN = "eeeeeeee-0000-4000-8000-000000000005"


@pytest.fixture
def stranger() -> Iterator[FakeCxone]:
    """A server the secret must never reach."""
    server = FakeCxone().start()
    yield server
    server.stop()


def api_calls(sim) -> list[dict]:
    return [r for r in sim.requests() if not r["path"].startswith("/_sim/")]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("archiver: error:")]


def bare_env(sim, **extra: str) -> dict[str, str]:
    """The simulator's credentials, without CXONE_BASE_URL."""
    env = sim_env(sim, **extra)
    del env["CXONE_BASE_URL"]
    return env


@pytest.mark.parametrize("verb", ["run", "plan"])
def test_a_host_in_dotenv_never_receives_the_secret(tmp_path, start_sim, stranger, verb):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=30)
    doc = policy_dict([CAMPAIGN])
    doc["connection"]["base_url"] = sim.base_url
    policy = write_policy(tmp_path / "p.yaml", doc)
    (tmp_path / ".env").write_text(
        f"CXONE_BASE_URL={stranger.url}\nCXONE_CLIENT_ID={CLIENT_ID}\n"
        f"CXONE_CLIENT_SECRET={CLIENT_SECRET}\n"
    )
    env = bare_env(sim)
    del env["CXONE_CLIENT_ID"], env["CXONE_CLIENT_SECRET"]  # the secrets come from .env
    args = [verb, str(policy)] + (["--state", str(tmp_path / "s")] if verb == "run" else [])
    result = run_cli(args, env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert stranger.seen() == [], "the .env file's host got a request"
    assert [r for r in api_calls(sim) if r["path"] == wire.TOKEN_PATH], "the policy's host did"
    assert "CXONE_BASE_URL in the .env file is ignored" in result.stderr
    assert "overridden" not in result.stderr


def test_base_url_option_wins_and_the_log_says_so_at_start(tmp_path, start_sim, stranger):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=30)
    doc = policy_dict([CAMPAIGN])
    doc["connection"]["base_url"] = "https://api.example.invalid"
    policy = write_policy(tmp_path / "p.yaml", doc)
    env = sim_env(sim, CXONE_BASE_URL=stranger.url)  # the option wins over the variable too
    result = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "s"), "--base-url", sim.base_url], env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert stranger.seen() == []
    first = result.stderr.splitlines()[0]
    assert f"connection.base_url overridden by --base-url: {sim.base_url}" in first
    assert set(sim.ledger()) == sim.eligible_ids(CAMPAIGN, set(APPROVED))


def test_an_environment_base_url_is_logged_as_an_override(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=30)
    policy = write_policy(tmp_path / "p.yaml", policy_dict([CAMPAIGN]))
    result = run_cli(["run", str(policy), "--state", str(tmp_path / "s")], sim_env(sim))
    assert result.returncode == 0, result.stderr[-3000:]
    expected = f"connection.base_url overridden by CXONE_BASE_URL from the environment: {sim.base_url}"
    assert expected in result.stderr.splitlines()[0]


@pytest.mark.parametrize("verb", ["run", "plan"])
def test_refused_credentials_stop_in_one_line_with_exit_78(tmp_path, start_sim, verb):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=30)
    policy = write_policy(tmp_path / "p.yaml", policy_dict([CAMPAIGN]))
    env = sim_env(sim, CXONE_CLIENT_SECRET="wrong-secret-Pq93")
    args = [verb, str(policy)] + (["--state", str(tmp_path / "s")] if verb == "run" else [])
    result = run_cli(args, env)
    assert result.returncode == 78, result.stdout + result.stderr
    host = sim.base_url.removeprefix("http://")
    assert error_lines(result.stderr) == [
        f"archiver: error: credentials refused by {host}: unknown client or wrong secret (HTTP 401)"
    ]
    assert result.stdout == "", "no table of zeros, no 'nothing left to do'"
    assert [r["path"] for r in api_calls(sim)] == [wire.TOKEN_PATH]


@pytest.mark.parametrize("verb", ["run", "plan"])
def test_a_closed_port_is_one_clean_line_at_once(tmp_path, verb):
    doc = policy_dict([CAMPAIGN])
    # Backoffs that would keep a retried refusal going for minutes.
    doc["retry"].update(max_attempts=10, initial_backoff_seconds=2, max_backoff_seconds=60)
    policy = write_policy(tmp_path / "p.yaml", doc)
    args = [verb, str(policy)] + (["--state", str(tmp_path / "s")] if verb == "run" else [])
    with refused_port() as port:
        env = {
            "PATH": "/usr/bin:/bin",
            "CXONE_BASE_URL": f"http://127.0.0.1:{port}",
            "CXONE_CLIENT_ID": CLIENT_ID,
            "CXONE_CLIENT_SECRET": CLIENT_SECRET,
        }
        started = time.monotonic()
        result = run_cli(args, env, timeout=60, cwd=tmp_path)
        took = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    assert took < 30
    assert error_lines(result.stderr) == [
        f"archiver: error: cannot reach 127.0.0.1:{port}: connection refused"
    ]
    for noise in ("urllib3", "HTTPConnection", "Max retries", "Errno", "Traceback"):
        assert noise not in result.stdout + result.stderr
    assert result.stdout == ""


def test_an_unknown_host_name_is_one_clean_line(tmp_path):
    policy = write_policy(tmp_path / "p.yaml", policy_dict([CAMPAIGN]))
    env = {
        "PATH": "/usr/bin:/bin",
        "CXONE_BASE_URL": "https://no-such-host.invalid",
        "CXONE_CLIENT_ID": CLIENT_ID,
        "CXONE_CLIENT_SECRET": CLIENT_SECRET,
    }
    result = run_cli(["plan", str(policy)], env, timeout=60, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = error_lines(result.stderr)
    # "name not found", or the resolver's own words when it could not ask at all.
    assert line.startswith("archiver: error: cannot reach no-such-host.invalid: name "), line
    assert "urllib3" not in result.stderr and "Traceback" not in result.stderr


def test_a_client_secret_too_short_to_mask_is_refused_before_any_request(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=30)
    policy = write_policy(tmp_path / "p.yaml", policy_dict([CAMPAIGN]))
    # Masked, a one-letter secret would turn every "e" of every log line into "***".
    result = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "s")], sim_env(sim, CXONE_CLIENT_SECRET="e")
    )
    assert result.returncode == 78, result.stderr
    assert error_lines(result.stderr) == [
        "archiver: error: CXONE_CLIENT_SECRET is shorter than 8 characters: too short to be a "
        "secret or to be masked in logs; set the real value"
    ]
    assert "***" not in result.stderr
    assert api_calls(sim) == []


def test_a_campaign_the_server_does_not_know_is_not_reported_as_nothing_to_do(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=30)
    unknown = "00000000-0000-4000-8000-0000000000ff"
    policy = write_policy(tmp_path / "p.yaml", policy_dict([unknown]))
    result = run_cli(["run", str(policy), "--state", str(tmp_path / "s")], sim_env(sim))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.rstrip().splitlines()
    assert lines[-2:] == [
        "listed 0, archived 0, skipped 0, quarantined 0, failed 0",
        "nothing archived: 1 campaign failed (see above)",
    ]
    assert "nothing left to do" not in result.stdout
    assert any(line.startswith(f"  {unknown}: failed: ") and "404" in line for line in lines)


@pytest.mark.parametrize(("url", "why"), [
    ("https://[::1", "is not a valid URL"),
    ("https://exa mple.com", "holds a space or a control character"),
    ("garbage", "must be an https:// URL or `embedded`"),
    ("https://api.example.com:99999", "is not a valid URL"),
])
@pytest.mark.parametrize("origin", ["CXONE_BASE_URL", "--base-url"])
@pytest.mark.parametrize("verb", ["run", "plan"])
def test_a_malformed_base_url_is_one_line_naming_where_it_came_from(
    tmp_path, start_sim, url, why, origin, verb
):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=30)
    doc = policy_dict([CAMPAIGN])
    doc["connection"]["base_url"] = sim.base_url
    policy = write_policy(tmp_path / "p.yaml", doc)
    env = bare_env(sim)
    if origin == "CXONE_BASE_URL":
        env["CXONE_BASE_URL"] = url
    args = [verb, str(policy)] + (["--state", str(tmp_path / "s")] if verb == "run" else [])
    if origin == "--base-url":
        args += ["--base-url", url]
    result = run_cli(args, env)
    assert result.returncode == 78, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    where = "CXONE_BASE_URL from the environment" if origin == "CXONE_BASE_URL" else "--base-url"
    [line] = error_lines(result.stderr)
    assert line.startswith(f"archiver: error: {where} "), line
    assert why in result.stderr
    assert api_calls(sim) == [], "a request went out before the URL was refused"


@pytest.mark.parametrize("verb", ["run", "plan"])
def test_an_empty_cxone_base_url_overrides_nothing(tmp_path, start_sim, verb):
    # `CXONE_BASE_URL=` (set to nothing) is not a malformed URL: the policy's host is used.
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=30)
    doc = policy_dict([CAMPAIGN])
    doc["connection"]["base_url"] = sim.base_url
    policy = write_policy(tmp_path / "p.yaml", doc)
    env = sim_env(sim, CXONE_BASE_URL="")
    args = [verb, str(policy)] + (["--state", str(tmp_path / "s")] if verb == "run" else [])
    result = run_cli(args, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert error_lines(result.stderr) == []
    assert "overridden" not in result.stderr
    assert api_calls(sim) != []

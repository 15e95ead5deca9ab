"""A run that cannot be right refuses before its first request."""

from __future__ import annotations

from tests.support import policy_dict, run_cli, sim_env, write_policy

CAMPAIGN = "dddddddd-0000-4000-8000-000000000004"


def api_calls(sim) -> list[dict]:
    return [r for r in sim.requests() if not r["path"].startswith("/_sim/")]


def test_missing_webhook_secret_refuses_before_any_request(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=20)
    doc = policy_dict([CAMPAIGN])
    doc["sinks"] = [{"type": "webhook", "url": sim.webhook_url, "secret_env": "NOT_SET_ANYWHERE"}]
    policy = write_policy(tmp_path / "p.yaml", doc)
    result = run_cli(["run", str(policy), "--state", str(tmp_path / "s")], sim_env(sim))
    assert result.returncode == 78, result.stderr
    assert "NOT_SET_ANYWHERE" in result.stderr
    assert api_calls(sim) == []


def test_missing_client_credentials_refuse_before_any_request(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=20)
    policy = write_policy(tmp_path / "p.yaml", policy_dict([CAMPAIGN]))
    env = sim_env(sim)
    del env["CXONE_CLIENT_SECRET"]
    result = run_cli(["run", str(policy), "--state", str(tmp_path / "s")], env, cwd=tmp_path)
    assert result.returncode == 78, result.stderr
    assert "CXONE_CLIENT_SECRET" in result.stderr
    # The host the credentials are for, not "a real tenant" (this one is on loopback).
    host = sim.base_url.removeprefix("http://")
    assert f"must be set for {host} (any API but the built-in simulator" in result.stderr
    assert api_calls(sim) == []


def test_a_blank_client_id_is_missing_not_sent(tmp_path, start_sim):
    # An env file's `CXONE_CLIENT_ID=` (or one of spaces) was sent as it was and the
    # server's refusal reported as "credentials refused".
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=20)
    policy = write_policy(tmp_path / "p.yaml", policy_dict([CAMPAIGN]))
    for blank in ("", "   "):
        env = {**sim_env(sim), "CXONE_CLIENT_ID": blank}
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "s")], env, cwd=tmp_path)
        assert result.returncode == 78, result.stderr
        assert "CXONE_CLIENT_ID and CXONE_CLIENT_SECRET must be set for" in result.stderr
        assert api_calls(sim) == []


def test_invalid_policy_refused_with_its_line_before_any_request(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=20)
    doc = policy_dict([CAMPAIGN])
    doc["batch"]["max_items"] = 500
    policy = write_policy(tmp_path / "p.yaml", doc)
    line = next(
        n for n, text in enumerate(policy.read_text().splitlines(), 1) if "max_items" in text
    )
    result = run_cli(["run", str(policy), "--state", str(tmp_path / "s")], sim_env(sim))
    assert result.returncode == 78
    assert f"{policy}:{line}:" in result.stderr
    assert api_calls(sim) == []
    assert "Traceback" not in result.stderr


def test_wrong_client_secret_is_a_clear_terminal_error_without_the_secret(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=20)
    policy = write_policy(tmp_path / "p.yaml", policy_dict([CAMPAIGN]))
    env = sim_env(sim, CXONE_CLIENT_SECRET="wrong-secret-Pq93")
    result = run_cli(["run", str(policy), "--state", str(tmp_path / "s")], env)
    assert result.returncode == 78, result.stderr
    assert "wrong-secret-Pq93" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    tokens = [r for r in api_calls(sim) if r["path"] == "/oauth/token"]
    assert 1 <= len(tokens) <= 2, "an invalid client is not retried over and over"


def test_a_bad_policy_among_several_stops_all_of_them_before_any_request(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=20)
    good = write_policy(tmp_path / "good.yaml", policy_dict([CAMPAIGN]))
    doc = policy_dict([CAMPAIGN])
    doc["campaigns"][0]["on_active"] = "maybe"
    bad = write_policy(tmp_path / "bad.yaml", doc)
    result = run_cli(["run", str(good), str(bad), "--state", str(tmp_path / "s")], sim_env(sim))
    assert result.returncode == 78
    assert str(bad) in result.stderr
    assert api_calls(sim) == []

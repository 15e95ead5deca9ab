"""``api: cxone`` at the edges of the CLI: credentials refused before the first request,
the shipped example against the embedded simulator, and ``archiver simulate --api cxone``
served standalone."""

from __future__ import annotations

import os
import subprocess
import sys

from archiver.simulator.cxone import CxoneSimulator
from tests.support import REPO, run_cli
from tests.support_cxone import archive_files, cxone_env, cxone_policy

VARIABLES = ("CXONE_ACCESS_KEY_ID", "CXONE_ACCESS_KEY_SECRET", "CXONE_CLIENT_ID",
             "CXONE_CLIENT_SECRET")


def test_missing_credentials_are_refused_before_the_first_request(tmp_path):
    with CxoneSimulator() as sim:
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids)
        env = cxone_env(sim)
        for name in ("CXONE_ACCESS_KEY_SECRET", "CXONE_CLIENT_ID"):
            env.pop(name)
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "s")], env, cwd=tmp_path)
        assert sim.requests() == [], "nothing was sent"
    assert result.returncode == 78
    line = result.stderr.strip().splitlines()[-1]
    assert "CXONE_ACCESS_KEY_SECRET" in line and "CXONE_CLIENT_ID" in line
    assert "Traceback" not in result.stderr


def test_credentials_come_from_a_dotenv_file_and_are_never_printed(tmp_path):
    with CxoneSimulator() as sim:
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids[:1])
        env = cxone_env(sim)
        dotenv = "".join(f"{name}={env.pop(name)}\n" for name in VARIABLES)
        (tmp_path / ".env").write_text(dotenv)
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "s"), "-v"], env,
                         cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        secrets = (sim.config.access_key_secret, sim.config.client_secret)
    assert archive_files(tmp_path / "archive")
    for secret in secrets:
        assert secret not in result.stdout + result.stderr


def test_a_too_short_secret_is_refused_naming_its_variable(tmp_path):
    with CxoneSimulator() as sim:
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids[:1])
        env = cxone_env(sim, CXONE_CLIENT_SECRET="q7Zk")
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "s")], env, cwd=tmp_path)
        assert sim.requests() == []
    assert result.returncode == 78
    assert "CXONE_CLIENT_SECRET is shorter than" in result.stderr
    assert "q7Zk" not in result.stderr


def test_the_shipped_cxone_example_runs_against_the_embedded_simulator(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    example = tmp_path / "examples" / "cxone-export.yaml"
    example.parent.mkdir()
    example.write_text((REPO / "examples" / "cxone-export.yaml").read_text())
    args = ["run", str(example), "--state", str(tmp_path / ".cxone-demo")]
    result = run_cli(args, env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "embedded" in result.stderr
    files = archive_files(tmp_path / "examples" / "archive")
    assert files and all(records for records in files.values())
    verify = run_cli(["audit", "verify", str(tmp_path / "examples" / "audit" /
                                            "cxone-export-audit.jsonl")], env, cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_simulate_api_cxone_serves_the_cxone_personality_standalone(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    server = subprocess.Popen(
        [sys.executable, "-m", "archiver", "simulate", "--api", "cxone", "--port", "0",
         "--campaigns", "1", "--attempts", "50"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline().strip()
        assert first.startswith("listening on http://127.0.0.1:")
        base = first.removeprefix("listening on ")
        announced = [server.stdout.readline().strip() for _ in range(4)]
        tenant = announced[0].split()[1]
        creds = dict(
            pair.split("=", 1) for line in announced[1:3] for pair in line.split()
        )
        policy = tmp_path / "p.yaml"
        policy.write_text(
            "version: 1\nname: standalone\nconnection: {api: cxone, tenant_id: "
            f"'{tenant}', auth_url: '{base}'}}\ncampaigns: [{{id: '1834501', action: export}}]\n"
            "sinks: [{type: file, path: 'archive/{campaign}/'}]\n"
        )
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "s")],
                         {**env, **creds}, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        [records] = archive_files(tmp_path / "archive").values() or [[]]
        assert len(records) == 50
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_a_campaign_the_tenant_does_not_know_fails_instead_of_listing_nothing(tmp_path):
    """contacts/completed filtered by an unknown campaignId answers 204, like a campaign
    with nothing new: a mistyped id once ended `nothing left to do`, exit 0."""
    with CxoneSimulator() as sim:
        known = sim.campaign_ids[0]
        policy = cxone_policy(tmp_path, sim, [known, "9999999"])
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "s")], cxone_env(sim),
                         cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "campaign 9999999 not found" in result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert "1 campaign failed" in last, last
    assert archive_files(tmp_path / "archive"), "the known campaign was still exported"


def test_an_access_key_of_another_tenant_is_refused_before_anything_is_listed(tmp_path):
    """The policy names one tenant, its API host given (connection.base_url), and the
    access key belongs to another tenant on that host: the token's claims name its
    tenant. Acting with it would retire or export the other tenant's attempts under a
    policy approved for this one: the run stops at the login, with nothing listed."""
    other = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
    with CxoneSimulator() as sim:
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids[:1], tenant_id=other,
                              base_url=sim.base_url)
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "s")], cxone_env(sim),
                         cwd=tmp_path)
        kinds = {r["kind"] for r in sim.requests()}
    out = result.stdout + result.stderr
    assert result.returncode == 78, out
    assert f"tenant {sim.config.tenant_id}" in out and other in out, out
    assert kinds <= {"token"}, kinds
    assert not archive_files(tmp_path / "archive")

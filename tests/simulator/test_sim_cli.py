from __future__ import annotations

import subprocess
import sys

import pytest
import requests
from click.testing import CliRunner

from archiver.commands.simulate import command
from archiver.simulator import Simulator


def test_help_explains_the_options() -> None:
    result = CliRunner().invoke(command, ["--help"])
    assert result.exit_code == 0
    for option in ("--port", "--host", "--seed", "--campaign", "--campaigns", "--attempts",
                   "--unanonymized-rate", "--malformed-rate", "--rate-limit", "--no-retry-after",
                   "--error-rate", "--token-lifetime", "--latency-ms", "--hang-rate",
                   "--hang-seconds", "--active", "--partial-failure-rate", "--client-id",
                   "--client-secret", "--webhook-secret"):
        assert option in result.output


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

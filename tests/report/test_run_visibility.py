"""``archiver run`` as users run it (a subprocess): report, metrics, logs, progress, no secrets."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from archiver.simulator import Faults
from archiver.simulator.tokens import TokenStore
from tests.report.conftest import check_report
from tests.support import REPO, policy_dict, run_cli, sim_env, write_policy

CAMPAIGNS = ["5a1e0c2d-0000-4000-8000-00000000000a", "5a1e0c2d-0000-4000-8000-00000000000b"]
CLIENT_SECRET = "Cl13nt-S3cr3t-visibility-9f2b7d"
WEBHOOK_SECRET = "whsec_V2gwMGstUzNjcjN0LXZpc2liaWxpdHktNGM4ZTFh"  # Standard Webhooks format
# Settings that would make rich colour output that is not a terminal.
FORCING = ("FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES")


def clean_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in FORCING}


def metric_families(path: Path) -> dict[str, list[Sample]]:
    return {f.name: f.samples for f in text_string_to_metric_families(path.read_text())}


@pytest.fixture
def issued_tokens(monkeypatch):
    """Every access token the in-process simulator hands out."""
    tokens: list[str] = []
    original = TokenStore.issue

    def issue(self, *args, **kwargs):
        token = original(self, *args, **kwargs)
        tokens.append(token)
        return token

    monkeypatch.setattr(TokenStore, "issue", issue)
    return tokens


def test_no_secret_or_token_anywhere_with_debug_logging(tmp_path, start_sim, issued_tokens, report_schema):
    sim = start_sim(
        # Short tokens (several issued, refreshes), 429s and 5xx: error paths log too.
        Faults(token_lifetime_seconds=1, rate_limit_rps=40, error_5xx_rate=0.05,
               active_campaigns=[CAMPAIGNS[1]]),
        campaign_ids=CAMPAIGNS, attempts_per_campaign=400, seed=21,
        client_secret=CLIENT_SECRET, webhook_secret=WEBHOOK_SECRET,
    )
    doc = policy_dict(CAMPAIGNS)
    doc["source"]["page_size"] = 50
    doc["batch"]["max_items"] = 50
    # Slow enough (about 70 calls) to outlive a token: the refresh is logged too.
    doc["connection"]["max_requests_per_second"] = 25
    doc["sinks"] = [
        {"type": "webhook", "url": sim.webhook_url, "secret_env": "DW_WEBHOOK_SECRET"},
        {"type": "audit_log", "path": "audit/audit.jsonl"},
    ]
    policy = write_policy(tmp_path / "policy.yaml", doc)
    state, report_path, metrics_path = tmp_path / "state", tmp_path / "report.json", tmp_path / "run.prom"
    env = clean_env(sim_env(sim, CXONE_CLIENT_SECRET=CLIENT_SECRET, DW_WEBHOOK_SECRET=WEBHOOK_SECRET))

    result = run_cli(
        ["run", str(policy), "--state", str(state), "--report", str(report_path),
         "--metrics", str(metrics_path), "--log-format", "json", "--log-level", "debug"],
        env, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    # The secrets were really in use: tokens issued, webhooks verified with the secret.
    assert len(issued_tokens) >= 2
    assert sim.webhooks() and all(d["valid"] for d in sim.webhooks())
    # Debug logging was really on, library loggers included, each line JSON with the run id.
    lines = [json.loads(x) for x in result.stderr.splitlines()]
    report = json.loads(report_path.read_text())
    assert {x["run_id"] for x in lines} == {report["run_id"]}
    assert any(x["logger"].startswith("urllib3") and x["level"] == "debug" for x in lines)
    assert {x["campaign"] for x in lines if x["logger"] == "archiver.progress"} == set(CAMPAIGNS)

    check_report(report, report_schema)
    assert report["api"]["rate_limited"] + report["api"]["errors"] > 0
    assert "archiver_run_attempts" in metric_families(metrics_path)

    places = {
        "stdout": result.stdout.encode(),
        "stderr": result.stderr.encode(),
        "report": report_path.read_bytes(),
        "metrics": metrics_path.read_bytes(),
        "audit log": (tmp_path / "audit" / "audit.jsonl").read_bytes(),
    }
    for db_file in state.iterdir():  # state.db and any WAL/SHM beside it
        places[db_file.name] = db_file.read_bytes()
    assert "state.db" in places and places["audit log"]
    for secret in (CLIENT_SECRET, WEBHOOK_SECRET, *issued_tokens):
        for where, data in places.items():
            assert secret.encode() not in data, f"a secret appears in {where}"
    assert b"Bearer " not in places["stderr"].replace(b"Bearer ***", b"")
    # Not a terminal: no control sequences at all.
    assert "\x1b" not in result.stdout and "\x1b" not in result.stderr


def test_demo_policy_report_metrics_and_runs(tmp_path, report_schema):
    work = tmp_path / "demo"
    # The demo writes its audit log beside itself: run a copy.
    shutil.copytree(REPO / "examples", work, ignore=shutil.ignore_patterns("audit"))
    env = clean_env({k: v for k, v in os.environ.items() if not k.startswith("CXONE_")})
    env["DEMO_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    state, report_path, metrics_path = tmp_path / "st", tmp_path / "out" / "r.json", tmp_path / "m.prom"

    result = run_cli(
        ["run", str(work / "demo.yaml"), "--state", str(state), "--report", str(report_path),
         "--metrics", str(metrics_path), "--log-format", "json", "--log-level", "debug"],
        env, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(report_path.read_text())
    check_report(report, report_schema)
    assert report["policy"]["name"] == "demo"
    assert report["pauses"] == report["resumes"] >= 1  # the demo's dialing campaign
    latency = report["api"]["endpoints"]["list"]["latency_seconds"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]

    families = metric_families(metrics_path)
    attempts = {(s.labels["campaign"], s.labels["state"]): s.value for s in families["archiver_run_attempts"]}
    for campaign in report["campaigns"]:
        for state_name in ("archived", "skipped", "quarantined", "failed"):
            assert attempts[(campaign["id"], state_name)] == campaign[state_name]
    # The first run on this state folder: its tries are all the running total has.
    assert sum(s.value for s in families["archiver_requests"]) == report["api"]["requests"]
    # The demo runs against the built-in simulator: no success to alert on.
    assert "archiver_last_success_timestamp_seconds" not in families
    assert {s.labels["host"] for f in families.values() for s in f} == {"embedded"}
    for name in ("archiver_retries", "archiver_rate_limited"):
        assert name in families
    audit = (work / "audit" / "demo-audit.jsonl").read_text()
    for place in (result.stdout, result.stderr, report_path.read_text(), metrics_path.read_text(), audit):
        assert WEBHOOK_SECRET not in place

    # The summary on stdout has the per-campaign and latency tables.
    assert "API calls" in result.stdout and "p95" in result.stdout
    assert report["campaigns"][0]["id"] in result.stdout

    listed = run_cli(["runs", "--state", str(state), "--format", "json"], env)
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["id"], row["status"], row["listed"]) == (report["run_id"], "completed", report["totals"]["listed"])
    shown = run_cli(["runs", "--state", str(state), "show", report["run_id"][:18]], env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == report


def run_in_pty(args: list[str], env: dict[str, str], timeout: float = 90) -> tuple[int, str]:
    """Run ``archiver ARGS`` with a pseudo-terminal as stdin, stdout and stderr."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "archiver", *args], stdin=slave, stdout=slave, stderr=slave,
        env=env, cwd=REPO, close_fds=True, start_new_session=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                raise AssertionError("the run did not end in time")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal is gone
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", errors="replace")


def test_progress_display_on_a_terminal(tmp_path, start_sim):
    sim = start_sim(campaign_ids=CAMPAIGNS, attempts_per_campaign=300, seed=4)
    policy = write_policy(tmp_path / "policy.yaml", policy_dict(CAMPAIGNS))
    env = clean_env(sim_env(sim))
    env.update(COLUMNS="160", LINES="40", TERM="xterm-256color")

    code, output = run_in_pty(["run", str(policy), "--state", str(tmp_path / "state")], env)
    assert code == 0, output[-3000:]
    assert "\x1b[" in output  # a live display: cursor movement and colour
    plain = output.replace("\r", "\n")
    frames = [line for line in plain.splitlines() if CAMPAIGNS[0] in line and "listed" in line]
    assert frames, output[-3000:]
    last = frames[-1]
    assert "━" in last and "/s" in last and "archived" in last


def test_quiet_without_a_terminal_prints_only_the_summary_line(tmp_path, start_sim):
    sim = start_sim(campaign_ids=CAMPAIGNS[:1], attempts_per_campaign=100, seed=6)
    policy = write_policy(tmp_path / "policy.yaml", policy_dict(CAMPAIGNS[:1]))
    result = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "state"), "--quiet"], clean_env(sim_env(sim))
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("listed 100, archived ")
    assert "\x1b" not in result.stdout

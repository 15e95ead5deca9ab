"""Helpers shared by tests: policy files written from dicts, the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from archiver.cxone import RateLimiter
from archiver.cxone.retry import interruptible_sleep
from archiver.simulator import Simulator

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-client-secret-Zq81"
# A Standard Webhooks secret: whsec_ + base64 of at least 24 bytes.
WEBHOOK_SECRET = "whsec_YXJjaGl2ZXIgdGVzdHMgd2ViaG9vayBzZWNyZXQgS3g0Mg=="
APPROVED = ["SURVEY_TAKEN", "NO_ANSWER", "BUSY", "DISCONNECTED"]
REPO = Path(__file__).resolve().parent.parent


def policy_dict(campaign_ids: list[str], **over: Any) -> dict[str, Any]:
    """A complete policy; ``over`` replaces top-level sections."""
    doc: dict[str, Any] = {
        "version": 1,
        "name": "test-policy",
        "connection": {
            "base_url": "embedded",
            "timeout_seconds": 5,
            "max_requests_per_second": 200,
            "max_in_flight": 4,
        },
        "campaigns": [{"id": c, "on_active": "pause_and_resume"} for c in campaign_ids],
        "source": {"page_size": 100},
        "filters": [
            {"type": "outcome", "approved": APPROVED},
            {"type": "anonymized", "on_violation": "quarantine"},
        ],
        "transforms": [
            {
                "type": "retention",
                "default_days": 365,
                "use_record_value": True,
                "rules": [{"outcome": "SURVEY_TAKEN", "days": 730}],
            }
        ],
        "batch": {"max_items": 200, "force_cold_storage": True, "delete_active": True},
        "retry": {
            "max_attempts": 6,
            "initial_backoff_seconds": 0.05,
            "max_backoff_seconds": 0.5,
            "respect_retry_after": True,
        },
        "sinks": [],
    }
    doc.update(over)
    return doc


# examples/demo.yaml sends ten calls a second, so a person can watch it: some five seconds
# a run. Tests that run a copy for what it writes (audit logs, digests, reports, approvals)
# raise that pace in the copy; test_run_visibility runs the demo as shipped.
DEMO_PACE = "  max_requests_per_second: 10\n"
TEST_PACE = "  max_requests_per_second: 500\n"


def demo_at_test_pace(policy: Path) -> Path:
    """Rewrite the copy of the demo policy at ``policy`` to send calls at the test pace."""
    text = policy.read_text()
    assert DEMO_PACE in text, "examples/demo.yaml no longer paces itself as DEMO_PACE says"
    policy.write_text(text.replace(DEMO_PACE, TEST_PACE, 1))
    return policy


def write_policy(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def sim_env(sim: Simulator, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    env.update(
        CXONE_BASE_URL=sim.base_url,
        CXONE_CLIENT_ID=CLIENT_ID,
        CXONE_CLIENT_SECRET=CLIENT_SECRET,
        DW_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``archiver ARGS`` in a subprocess, the way users run it."""
    return subprocess.run(
        [sys.executable, "-m", "archiver", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO,
    )


def terminate_once_archiving(
    proc: subprocess.Popen[str], sim: Simulator, deadline: float
) -> str:
    """SIGTERM a run once the simulator has archived something of it, however slowly the
    machine got there (``deadline``: a ``time.monotonic()`` it must be by); its stderr
    once it stopped, which it must with exit 1 (interrupted: run again to resume)."""
    while not sim.ledger():
        assert time.monotonic() < deadline and proc.poll() is None, "nothing was ever archived"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr[-2000:]
    return stderr


def ed25519_key_pair(folder: Path) -> tuple[Path, Path]:
    """A fresh Ed25519 key pair made with openssl, as README "For auditors" makes it:
    ``folder/signing.pem`` (private) and ``folder/signing.pub.pem`` (public)."""
    private, public = folder / "signing.pem", folder / "signing.pub.pem"
    for args in (["genpkey", "-algorithm", "ed25519", "-out", str(private)],
                 ["pkey", "-in", str(private), "-pubout", "-out", str(public)]):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    return private, public


def read_report(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(path.read_text())
    totals = report["totals"]
    assert totals["listed"] == sum(totals[s] for s in ("archived", "skipped", "quarantined", "failed"))
    for c in report["campaigns"]:
        assert c["listed"] == sum(c[s] for s in ("archived", "skipped", "quarantined", "failed"))
    return report


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port where connections are refused, for as long as the block lasts: bound
    but never listening, so no other process can start listening on it meanwhile (a port
    merely closed again could be any server's by the time it is dialled)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def start_simulator_process(
    campaigns: list[str], *, seed: int, attempts: int, latency_ms: int
) -> tuple[subprocess.Popen[str], str]:
    """``archiver simulate`` in a process of its own (its CPU is not the runs'): the
    process and the base URL it listens on."""
    args = [
        sys.executable, "-m", "archiver", "simulate", "--port", "0", "--seed", str(seed),
        "--attempts", str(attempts), "--latency-ms", str(latency_ms), "--client-id", CLIENT_ID,
        "--client-secret", CLIENT_SECRET, "--webhook-secret", WEBHOOK_SECRET,
        *(a for c in campaigns for a in ("--campaign", c)),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("listening on "), first
    return proc, first.removeprefix("listening on ").strip()


def slow_limiter(stopping: threading.Event) -> tuple[RateLimiter, threading.Event]:
    """A rate limiter granting one request every 100 s, whose waits end when
    ``stopping`` is set (as a run's do), and an event set once a call waits for it."""
    waiting = threading.Event()
    wait = interruptible_sleep(stopping)

    def sleep(seconds: float) -> None:
        waiting.set()
        wait(seconds)

    return RateLimiter(0.01, adaptive=False, burst=1, sleep=sleep), waiting

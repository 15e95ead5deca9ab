"""A webhook endpoint that redirects gets nothing more: the signed body stays in the outbox."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support import policy_dict, read_report, run_cli, sim_env, write_policy

CAMPAIGN = "7e0d1c2d-0000-4000-8000-0000000000b2"


class Recorder(ThreadingHTTPServer):
    """Answers every POST with ``status`` (and ``location``), remembering what it got."""

    def __init__(self, status: int, location: str = "") -> None:
        self.status = status
        self.location = location
        self.received: list[tuple[str, bytes]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.received.append((self.path, body))
        self.send_response(self.server.status)
        if self.server.location:
            self.send_header("Location", self.server.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[tuple[Recorder, Recorder]]:
    target = Recorder(204)
    redirecting = Recorder(307, location=target.url)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (target, redirecting)]
    for t in threads:
        t.start()
    yield redirecting, target
    for s in (target, redirecting):
        s.shutdown()
        s.server_close()


@pytest.mark.parametrize("status", [307, 301, 308])
def test_a_redirect_is_a_failed_delivery_and_nothing_reaches_the_new_location(
    tmp_path, start_sim, servers, status
):
    redirecting, target = servers
    redirecting.status = status
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=200, seed=41)
    doc = policy_dict([CAMPAIGN])
    doc["sinks"] = [{"type": "webhook", "url": redirecting.url, "secret_env": "DW_WEBHOOK_SECRET"}]
    policy = write_policy(tmp_path / "p.yaml", doc)
    result = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "s"), "--report", str(tmp_path / "r.json")],
        sim_env(sim),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert redirecting.received, "the policy's endpoint was tried"
    assert target.received == [], "the signed body never followed the redirect"
    assert f"answered HTTP {status}: the endpoint redirected" in result.stderr
    [(sink, counts)] = read_report(tmp_path / "r.json")["outbox"].items()
    assert sink.startswith("webhook")
    assert counts["delivered"] == 0 and counts["pending"] >= 1, "kept in the outbox"

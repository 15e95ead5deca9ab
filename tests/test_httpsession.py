"""archiver's HTTP sessions: netrc never replaces archiver's own credentials; the proxy
and CA environment is still honoured."""

from __future__ import annotations

import socket
import threading

import pytest
import requests

from archiver.cxone.transport import Exchanges
from archiver.cxone.transport import session as api_session
from archiver.httpsession import Session
from archiver.templates import DEFAULT_WEBHOOK, load_template
from tests.e2e.test_webhook_signatures import CAMPAIGN, webhook_policy
from tests.support import run_cli, sim_env

API = "https://api.example.com"


@pytest.fixture
def netrc(tmp_path, monkeypatch):
    path = tmp_path / "netrc"
    path.write_text(
        "machine api.example.com login bob password hunter2\n"
        "machine 127.0.0.1 login bob password hunter2\n"
        "machine hooks.example.com login bob password hunter2\n"
    )
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "https_proxy", "http_proxy",
                 "all_proxy", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    return path


def prepared(s: requests.Session, url: str, headers: dict[str, str]) -> requests.PreparedRequest:
    return s.prepare_request(requests.Request("GET", url, headers=headers))


def test_a_netrc_entry_for_the_api_host_does_not_replace_the_bearer_token(netrc):
    # What requests does on its own: the netrc login replaces the header.
    assert prepared(requests.Session(), f"{API}/x", {"Authorization": "Bearer t"}).headers[
        "Authorization"
    ].startswith("Basic ")
    s = api_session(4, Exchanges())
    assert prepared(s, f"{API}/x", {"Authorization": "Bearer t"}).headers["Authorization"] == "Bearer t"
    assert "Authorization" not in prepared(s, f"{API}/x", {}).headers


def test_the_proxy_environment_is_honoured_per_host_and_never_for_loopback(netrc, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "skip.example.com")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/company-ca.pem")
    s = Session()
    through = s.merge_environment_settings(f"{API}/x", {}, None, None, None)
    assert through["proxies"]["https"] == "http://proxy.internal:3128"
    assert through["verify"] == "/etc/company-ca.pem"
    assert "https" not in s.merge_environment_settings("https://skip.example.com/x", {}, None, None, None)["proxies"]
    assert s.merge_environment_settings("https://127.0.0.1:8443/x", {}, None, None, None)["proxies"] == {}
    # A request's own setting wins over the environment, as with requests.
    own = s.merge_environment_settings(f"{API}/x", {"https": "http://other:1"}, None, False, None)
    assert own["proxies"]["https"] == "http://other:1" and own["verify"] is False


def test_the_environment_is_read_once_per_host(netrc, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    s = Session()
    assert s.environment_proxies(f"{API}/a")["https"] == "http://proxy.internal:3128"
    monkeypatch.setenv("HTTPS_PROXY", "http://changed:1")
    assert s.environment_proxies(f"{API}/b")["https"] == "http://proxy.internal:3128"
    assert s.environment_proxies("https://other.example.com/")["https"] == "http://changed:1"


def test_the_webhook_sink_sends_no_netrc_credentials(netrc):
    from archiver.stages.sinks.webhook import Webhook

    hook = Webhook("https://hooks.example.com/in", b"k" * 32, load_template(None, DEFAULT_WEBHOOK), 5.0)
    headers = prepared(hook._session, "https://hooks.example.com/in", {}).headers
    assert "Authorization" not in headers


def test_a_run_with_a_netrc_for_the_receiver_delivers_without_credentials(tmp_path, start_sim, netrc):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=120, seed=5)
    policy = webhook_policy(tmp_path, sim.webhook_url)
    result = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "s"), "--report", str(tmp_path / "r.json")],
        sim_env(sim, NETRC=str(netrc)),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    deliveries = sim.webhooks()
    assert deliveries and all(d["valid"] for d in deliveries)
    assert not any(d["authorization"] for d in deliveries)


def test_an_api_call_goes_through_the_proxy_the_environment_names(netrc, monkeypatch):
    # A loopback "proxy" that records the first line it is sent and refuses the tunnel.
    seen: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def proxy() -> None:
        with listener, listener.accept()[0] as conn:
            seen.append(conn.recv(4096).split(b"\r\n", 1)[0])
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=proxy, daemon=True)
    thread.start()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{listener.getsockname()[1]}")
    s = api_session(4, Exchanges())
    with pytest.raises(requests.exceptions.ProxyError):
        s.get(f"{API}/x", timeout=(5, 5))
    thread.join(10)
    assert len(seen) == 1 and seen[0].startswith(b"CONNECT api.example.com:443 HTTP/1.")

"""One rate limiter per API host for the policies of one command (``HostLimits``), and
what counts as the same host (``limit_host``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from archiver.connect import limit_host
from archiver.cxone.ratelimit import HostLimits
from archiver.errors import CallAbandoned
from archiver.policy import Policy, load_policy
from archiver.settings import Settings
from tests.support import policy_dict, write_policy

TENANT = "5c2b8f3e-7d41-4b1a-9e0f-2a6c8d4e1b77"


def _policy(tmp_path: Path, **connection: Any) -> Policy:
    doc = policy_dict(["c1"])
    if connection.get("api") == "cxone":
        doc["campaigns"] = [{"id": "1834501", "action": "export"}]
        doc["filters"] = [{"type": "outcome", "approved": ["Busy"]}]
        doc["transforms"] = []
        doc["connection"].pop("base_url")
    doc["connection"].update(connection)
    return load_policy(write_policy(tmp_path / "p.yaml", doc))


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("CXONE_BASE_URL", raising=False)
    monkeypatch.chdir(Path(__file__).parent)  # no .env here
    return Settings.load()


def test_the_host_is_scheme_host_and_port_of_the_api_base(tmp_path, settings):
    same = ["https://API.example.com", "https://api.example.com:443/", "https://api.example.com/x"]
    hosts = {limit_host(_policy(tmp_path, base_url=url), settings) for url in same}
    assert hosts == {"https://api.example.com:443"}
    other = _policy(tmp_path, base_url="https://api.example.com:8443")
    assert limit_host(other, settings) == "https://api.example.com:8443"
    # --base-url / CXONE_BASE_URL win, as for the calls themselves.
    overridden = Settings.load("http://127.0.0.1:8089")
    assert limit_host(_policy(tmp_path, base_url="https://api.example.com"), overridden) == (
        "http://127.0.0.1:8089"
    )


def test_an_embedded_run_shares_with_no_one(tmp_path, settings):
    assert limit_host(_policy(tmp_path, base_url="embedded"), settings) is None
    assert limit_host(_policy(tmp_path, api="cxone", tenant_id=TENANT, base_url="embedded"),
                      settings) is None


def test_a_cxone_tenant_without_a_base_url_is_keyed_by_its_auth_host_and_tenant(tmp_path, settings):
    policy = _policy(tmp_path, api="cxone", tenant_id=TENANT)
    assert limit_host(policy, settings) == f"https://cxone.niceincontact.com:443 tenant {TENANT}"
    given = _policy(tmp_path, api="cxone", tenant_id=TENANT,
                    base_url="https://api-na1.niceincontact.com")
    assert limit_host(given, settings) == "https://api-na1.niceincontact.com:443"


def test_a_shared_limiter_has_the_lowest_ceiling_declared():
    limits = HostLimits()
    limits.declare("https://a:443", 20)
    limits.declare("https://a:443", 8)
    limits.declare("https://b:443", 30)
    assert limits.shared("https://a:443") and not limits.shared("https://b:443")
    a = limits.limiter("https://a:443", 20)
    assert a is limits.limiter("https://a:443", 8), "one limiter for the host"
    assert a.ceiling == 8 and limits.limiter("https://b:443", 30).ceiling == 30
    assert limits.limiter("https://c:443", 5).ceiling == 5  # not declared: its own
    with pytest.raises(RuntimeError):
        limits.declare("https://a:443", 1)  # too late to lower a limiter in use


def test_a_stop_ends_the_shared_limiters_waits():
    limits = HostLimits()
    limiter = limits.limiter("https://a:443", 1)
    limiter.pause(60)
    limits.stopping.set()
    with pytest.raises(CallAbandoned):
        limiter.acquire()

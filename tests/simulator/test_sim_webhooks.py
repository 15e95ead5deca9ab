from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest
import requests
from standardwebhooks.webhooks import Webhook as ReferenceWebhook

from archiver.simulator import Faults, SimConfig, Simulator

SECRET = "whsec_" + base64.b64encode(b"simulator receiver test key 24+").decode()
OTHER = "whsec_" + base64.b64encode(b"another key entirely, rotated").decode()


def _signature(msg_id: str, stamp: str, raw: bytes, secret: str = SECRET) -> str:
    """What the reference library signs with ``secret``."""
    return ReferenceWebhook(secret).sign(
        msg_id, datetime.fromtimestamp(int(stamp), UTC), raw.decode()
    )


def _deliver(sim: Simulator, msg_id: str, payload: dict[str, object],
             signature: str | None = None, stamp: str | None = None) -> requests.Response:
    raw = json.dumps(payload).encode()
    stamp = stamp or str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": signature or _signature(msg_id, stamp, raw),
    }
    return requests.post(sim.webhook_url, data=raw, headers=headers, timeout=5)


@pytest.fixture
def sim():
    with Simulator(SimConfig(campaigns=1, attempts_per_campaign=1, webhook_secret=SECRET)) as s:
        yield s


def test_valid_signature_is_accepted_and_recorded(sim: Simulator) -> None:
    resp = _deliver(sim, "msg_1", {"event": "archived", "count": 3})
    assert resp.status_code == 204
    [delivery] = sim.webhooks()
    assert delivery["id"] == "msg_1"
    assert delivery["valid"] is True
    assert delivery["body"] == {"event": "archived", "count": 3}
    assert delivery["duplicate"] is False


def test_bad_signature_is_401_and_recorded_invalid(sim: Simulator) -> None:
    stamp = str(int(time.time()))
    wrong = _signature("msg_2", stamp, b"{}", secret=OTHER)
    assert _deliver(sim, "msg_2", {"a": 1}, signature=wrong, stamp=stamp).status_code == 401
    assert sim.webhooks()[0]["valid"] is False
    assert sim.stats()["webhooks"]["invalid"] == 1


def test_one_matching_signature_among_several_is_enough(sim: Simulator) -> None:
    raw = json.dumps({"a": 1}).encode()
    stamp = str(int(time.time()))
    good = _signature("msg_3", stamp, raw)
    old = _signature("msg_3", stamp, raw, secret=OTHER)
    resp = _deliver(sim, "msg_3", {"a": 1}, signature=f"{old} {good}", stamp=stamp)
    assert resp.status_code == 204


def test_tampered_body_or_stale_timestamp_is_refused(sim: Simulator) -> None:
    stamp = str(int(time.time()))
    signed_other = _signature("msg_4", stamp, b'{"a": 2}')
    assert _deliver(sim, "msg_4", {"a": 1}, signature=signed_other, stamp=stamp).status_code == 401
    stale = str(int(time.time()) - 3600)
    raw = json.dumps({"a": 1}).encode()
    resp = _deliver(sim, "msg_5", {"a": 1}, signature=_signature("msg_5", stale, raw), stamp=stale)
    assert resp.status_code == 401


def test_missing_headers_are_400(sim: Simulator) -> None:
    assert requests.post(sim.webhook_url, json={}, timeout=5).status_code == 400


def test_retries_of_the_same_id_are_marked_duplicate(sim: Simulator) -> None:
    _deliver(sim, "msg_6", {"n": 1})
    _deliver(sim, "msg_6", {"n": 1})
    assert [d["duplicate"] for d in sim.webhooks()] == [False, True]
    assert sim.stats()["webhooks"]["unique_accepted"] == 1


@pytest.mark.parametrize("status", [503, 410])
def test_webhook_status_fault_is_answered_instead(sim: Simulator, status: int) -> None:
    sim.set_faults(Faults(webhook_status=status))
    assert _deliver(sim, "msg_7", {"n": 1}).status_code == status
    sim.set_faults(Faults())
    assert _deliver(sim, "msg_7", {"n": 1}).status_code == 204
    first, second = sim.webhooks()
    assert (first["status"], first["valid"], second["duplicate"]) == (status, True, False)
    listed = requests.get(sim.webhook_url, timeout=5).json()
    assert [d["status"] for d in listed] == [status, 204]


def test_the_secret_is_read_as_the_standard_says_not_as_its_text(sim: Simulator) -> None:
    """Keyed by the base64-decoded bytes after ``whsec_``: a signature keyed by the text
    of the secret (what a non-standard sender computes) is refused."""
    raw = json.dumps({"a": 1}).encode()
    stamp = str(int(time.time()))
    by_text = hmac.new(SECRET.encode(), f"msg_8.{stamp}.".encode() + raw, hashlib.sha256)
    text_signature = "v1," + base64.b64encode(by_text.digest()).decode()
    assert _deliver(sim, "msg_8", {"a": 1}, signature=text_signature, stamp=stamp).status_code == 401
    assert _deliver(sim, "msg_9", {"a": 1}, stamp=stamp).status_code == 204


def test_a_delivery_is_kept_exactly_as_received_for_checks(sim: Simulator) -> None:
    stamp = str(int(time.time()))
    raw = json.dumps({"n": 1}).encode()
    _deliver(sim, "msg_10", {"n": 1}, stamp=stamp)
    [delivery] = sim.webhooks()
    headers = {"webhook-id": delivery["id"], "webhook-timestamp": delivery["timestamp"],
               "webhook-signature": delivery["signature"]}
    assert delivery["payload"] == raw.decode()
    assert ReferenceWebhook(SECRET).verify(delivery["payload"], headers) == {"n": 1}


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_!!!!"])
def test_a_secret_that_is_not_standard_is_refused_at_start(secret: str) -> None:
    with pytest.raises(ValueError, match="webhook_secret must be a Standard Webhooks secret"):
        SimConfig(campaigns=1, attempts_per_campaign=1, webhook_secret=secret)

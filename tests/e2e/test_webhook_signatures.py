"""Standard Webhooks for real: every delivery verifies with the reference library."""

from __future__ import annotations

import base64
import json
import os

import pytest
from standardwebhooks.webhooks import Webhook as ReferenceWebhook

from archiver.connect import resolve_secrets
from archiver.policy import load_policy
from archiver.webhook_secret import signing_key
from tests.support import WEBHOOK_SECRET, policy_dict, read_report, run_cli, sim_env, write_policy

CAMPAIGN = "5e0b1c2d-0000-4000-8000-0000000000a1"


def webhook_policy(tmp_path, url: str, **over):
    doc = policy_dict([CAMPAIGN], **over)
    doc["batch"]["max_items"] = 50
    doc["sinks"] = [{"type": "webhook", "url": url, "secret_env": "DW_WEBHOOK_SECRET"}]
    return write_policy(tmp_path / "p.yaml", doc)


def api_calls(sim) -> list[dict]:
    return [r for r in sim.requests() if not r["path"].startswith("/_sim/")]


def verified_bodies(deliveries: list[dict], secret: str) -> list[dict]:
    """Each delivery checked by the reference library, exactly as it was received."""
    out = []
    for d in deliveries:
        headers = {
            "webhook-id": d["id"],
            "webhook-timestamp": d["timestamp"],
            "webhook-signature": d["signature"],
        }
        out.append(ReferenceWebhook(secret).verify(d["payload"], headers))
    return out


@pytest.mark.parametrize("given", ["prefixed", "bare base64"])
def test_every_delivery_verifies_with_the_reference_library(tmp_path, start_sim, given):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=300, seed=31)
    policy = webhook_policy(tmp_path, sim.webhook_url)
    # The reference accepts the base64 without its prefix too; so do we.
    secret = WEBHOOK_SECRET if given == "prefixed" else WEBHOOK_SECRET.removeprefix("whsec_")
    env = sim_env(sim, DW_WEBHOOK_SECRET=secret)
    result = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "s"), "--report", str(tmp_path / "r.json")],
        env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    deliveries = sim.webhooks()
    batches = read_report(tmp_path / "r.json")["totals"]["archived"] // 50
    assert len(deliveries) >= batches > 0
    bodies = verified_bodies(deliveries, WEBHOOK_SECRET)
    assert [b["type"] for b in bodies] == ["batch_archived"] * len(deliveries)
    assert all(d["status"] == 204 and d["valid"] for d in deliveries)


@pytest.mark.parametrize(
    "bad",
    [
        "test-webhook-secret-Kx42",  # a password, not base64
        "whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),  # url-safe alphabet
        "whsec_" + base64.b64encode(b"only sixteen byt").decode(),  # shorter than 24 bytes
        "whsec_",
    ],
    ids=["password", "urlsafe", "short", "empty"],
)
def test_a_secret_not_in_the_standard_format_is_refused_before_any_request(
    tmp_path, start_sim, bad
):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=20)
    policy = webhook_policy(tmp_path, sim.webhook_url)
    result = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "s")], sim_env(sim, DW_WEBHOOK_SECRET=bad)
    )
    assert result.returncode == 78, result.stderr
    [line] = result.stderr.strip().splitlines()[-1:]
    assert "DW_WEBHOOK_SECRET" in line and "Standard Webhooks secret" in line
    if bad != "whsec_":  # (that one is masked wherever it appears, the advice included)
        assert "whsec_" in line
        assert bad not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert api_calls(sim) == []


def test_the_embedded_demo_makes_a_standard_secret_and_its_receiver_accepts_every_event(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("DW_WEBHOOK_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file of the checkout is read
    doc = policy_dict([CAMPAIGN])
    doc["campaigns"][0]["on_active"] = "fail"
    doc["sinks"] = [{"type": "webhook", "url": "embedded", "secret_env": "DW_WEBHOOK_SECRET"}]
    policy = write_policy(tmp_path / "embedded.yaml", doc)

    secret = resolve_secrets(load_policy(policy), embedded=True)["DW_WEBHOOK_SECRET"]
    assert secret.startswith("whsec_")
    assert len(signing_key(secret, env="DW_WEBHOOK_SECRET")) >= 24
    ReferenceWebhook(secret)  # the reference reads it too

    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("CXONE_", "ARCHIVER_")) and k != "DW_WEBHOOK_SECRET"
    }
    result = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "s"), "--report", str(tmp_path / "r.json")],
        env, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outbox = json.loads((tmp_path / "r.json").read_text())["outbox"]
    [webhook] = [v for k, v in outbox.items() if k.startswith("webhook")]
    assert webhook["delivered"] > 0 and webhook["pending"] == 0



@pytest.mark.parametrize("bad", ["short", "whsec_" + base64.b64encode(b"only sixteen byt").decode()],
                         ids=["password", "short"])
def test_a_malformed_secret_for_the_embedded_receiver_is_one_line_too(tmp_path, bad):
    # Once a traceback from the simulator's own check: the receiver is started before
    # the sinks are built, so the secret is checked before it starts.
    doc = policy_dict([CAMPAIGN])
    doc["campaigns"][0]["on_active"] = "fail"
    doc["sinks"] = [{"type": "webhook", "url": "embedded", "secret_env": "DW_WEBHOOK_SECRET"}]
    policy = write_policy(tmp_path / "embedded.yaml", doc)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    env["DW_WEBHOOK_SECRET"] = bad
    result = run_cli(["run", str(policy), "--state", str(tmp_path / "s")], env, cwd=tmp_path)
    assert result.returncode == 78, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.startswith("archiver: error:")]
    assert "webhook secret in DW_WEBHOOK_SECRET" in line and "Standard Webhooks secret" in line


def test_a_secret_with_whitespace_around_it_reaches_the_embedded_receiver_as_the_sink_reads_it(
    tmp_path
):
    # The sink reads " whsec_..." without the space; the receiver once read the space
    # too: a traceback from its own check, or (another length) every delivery refused.
    doc = policy_dict([CAMPAIGN])
    doc["campaigns"][0]["on_active"] = "fail"
    doc["sinks"] = [{"type": "webhook", "url": "embedded", "secret_env": "DW_WEBHOOK_SECRET"}]
    policy = write_policy(tmp_path / "embedded.yaml", doc)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    env["DW_WEBHOOK_SECRET"] = f" {WEBHOOK_SECRET}\n"
    result = run_cli(
        ["run", str(policy), "--state", str(tmp_path / "s"), "--report", str(tmp_path / "r.json")],
        env, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    outbox = json.loads((tmp_path / "r.json").read_text())["outbox"]
    [webhook] = [v for k, v in outbox.items() if k.startswith("webhook")]
    assert webhook["delivered"] > 0 and webhook["pending"] == 0

"""End to end through real sockets: an idempotency key names one request, body included.

An API that keeps answers for keys (as the simulator does, as Stripe does) answers a key
it has seen with the first answer when the body is the same, and refuses it (422) when
the body differs. A batch whose every item failed is formed again by the next run; when
what its request says changed in between (the policy's retention, here), it is another
request and must go under another key, or the API refuses it for as long as it keeps the
first one and the attempts are never archived.
"""

from __future__ import annotations

from archiver.simulator import Faults
from tests.support import APPROVED, policy_dict, read_report, run_cli, sim_env, write_policy

CAMPAIGN = "5e1f0c2a-7d3b-4c9e-8a61-0b2c3d4e5f60"


def archive_bodies(sim) -> list[tuple[str, dict]]:
    """(Idempotency-Key, body) of every archive call the simulator accepted."""
    sent = []
    for r in sim.requests():
        if r["kind"] == "archive" and r["status"] == 200:
            headers = {name.lower(): value for name, value in r["headers"].items()}
            sent.append((headers["idempotency-key"], r["body"]))
    return sent


def test_a_batch_formed_again_with_another_retention_goes_under_another_key(
    tmp_path, start_sim
):
    sim = start_sim(
        Faults(partial_failure_rate=1.0),
        campaign_ids=[CAMPAIGN],
        attempts_per_campaign=300,
        retention_rate=0.0,
        seed=23,
    )
    eligible = sim.eligible_ids(CAMPAIGN, set(APPROVED))
    doc = policy_dict([CAMPAIGN])
    path = write_policy(tmp_path / "p.yaml", doc)
    state = tmp_path / "state"
    first = run_cli(["run", str(path), "--state", str(state)], sim_env(sim))
    assert first.returncode == 1, first.stderr[-2000:]
    assert sim.ledger() == {}, "every item of every batch failed"
    first_keys = {key for key, _ in archive_bodies(sim)}

    # A reviewed change to the policy before the next run: no rule for SURVEY_TAKEN,
    # a longer default. The same attempts form the same batches, now with other bodies.
    doc["transforms"][0]["default_days"] = 400
    doc["transforms"][0]["rules"] = []
    write_policy(path, doc)
    sim.set_faults(Faults())
    sim.reset_log()
    second = run_cli(
        ["run", str(path), "--state", str(state), "--report", str(tmp_path / "r2.json")],
        sim_env(sim),
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert sim.stats()["idempotency_conflicts"] == 0
    assert set(sim.ledger()) == eligible and set(sim.ledger().values()) == {1}
    sent = archive_bodies(sim)
    assert sent and not {key for key, _ in sent} & first_keys
    days = {item["retentionPeriodDays"] for _, body in sent for item in body["items"]}
    assert days == {400}
    assert read_report(tmp_path / "r2.json")["totals"]["archived"] == len(eligible)


def test_a_batch_formed_again_with_the_same_request_keeps_its_key(tmp_path, start_sim):
    sim = start_sim(
        Faults(partial_failure_rate=1.0),
        campaign_ids=[CAMPAIGN],
        attempts_per_campaign=300,
        seed=23,
    )
    path = write_policy(tmp_path / "p.yaml", policy_dict([CAMPAIGN]))
    state = tmp_path / "state"
    first = run_cli(["run", str(path), "--state", str(state)], sim_env(sim))
    assert first.returncode == 1, first.stderr[-2000:]
    first_sent = archive_bodies(sim)
    sim.reset_log()
    second = run_cli(["run", str(path), "--state", str(state)], sim_env(sim))
    assert second.returncode == 1, second.stderr[-2000:]
    # The same request under the same key: the API answers it as a replay of the first.
    assert sorted(archive_bodies(sim)) == sorted(first_sent)
    assert sim.stats()["replays"] == len(first_sent)
    assert sim.stats()["idempotency_conflicts"] == 0

"""A dialing campaign that cannot be paused is paused once, not once per batch.

On the campaign archive API only a 409 to an archive call says a campaign dials, so
with ``on_active: pause_and_resume`` every batch sent before the pause is refused and
asks for it. When the pause itself fails, each of those refusals (and every batch
formed after them) used to try again: the campaign was stopped and restarted once per
batch, a change on the tenant each time. Now the first failed pause ends the campaign's
archiving for the run, every later refusal fails its batch without another pause, and
nothing of the campaign is archived while it dials.
"""

from __future__ import annotations

import json
from pathlib import Path

from archiver.simulator import Faults
from tests.support import policy_dict, run_cli, sim_env, write_policy

CAMPAIGN = "00000003-0000-4000-8000-000000000001"


def test_a_pause_that_fails_is_tried_once_and_fails_the_campaign(tmp_path: Path, start_sim) -> None:
    # Dialing (409 to every archive call until paused), and the campaign status endpoint
    # answers 429 with Retry-After: 1, longer than the policy's 0.2 s max_backoff: the
    # pause, and the resume that undoes it, give up at their first answer.
    sim = start_sim(Faults(active_campaigns=[CAMPAIGN], throttle_next={"campaign": 1000}),
                    campaign_ids=[CAMPAIGN], attempts_per_campaign=400, seed=11,
                    unanonymized_rate=0, malformed_rate=0)
    doc = policy_dict([CAMPAIGN])
    doc["batch"]["max_items"] = 20  # some 13 batches, four in flight at a time
    doc["retry"]["max_backoff_seconds"] = 0.2
    report = tmp_path / "report.json"
    result = run_cli(["run", str(write_policy(tmp_path / "policy.yaml", doc)), "--state",
                      str(tmp_path / "state"), "--report", str(report), "--quiet"],
                     sim_env(sim))
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]

    patches = [r for r in sim.requests() if r["method"] == "PATCH"]
    assert [r["body"]["status"] for r in patches] == ["PAUSED", "ACTIVE"], (
        "one pause, and the one resume that undoes it"
    )
    archive_calls = [r for r in sim.requests() if r["path"].endswith("/contacts/archive")]
    assert archive_calls and all(r["status"] == 409 for r in archive_calls)
    assert len(archive_calls) <= doc["connection"]["max_in_flight"] + 1, (
        "no batch is formed and sent once the pause failed"
    )
    assert sim.ledger() == {}

    ran = json.loads(report.read_text())
    [campaign] = ran["campaigns"]
    assert campaign["status"] == "failed"
    assert "could not be paused" in campaign["reason"], campaign["reason"]
    assert ran["totals"]["archived"] == 0
    assert ran["totals"]["failed"] == ran["totals"]["listed"] - ran["totals"]["skipped"] - (
        ran["totals"]["quarantined"])

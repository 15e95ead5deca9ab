"""The tutorial's re-implementation behaves as the tutorial does, keys fixed: the baseline is honest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from archiver.simulator import Simulator
from benchmarks import _tutorial
from tests.support import APPROVED, CLIENT_ID, CLIENT_SECRET

CAMPAIGNS = ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"]
CLEAN = {"unanonymized_rate": 0.0, "malformed_rate": 0.0, "retention_null_share": 0.0}


def run_tutorial(
    sim: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[dict[str, Any], Path]:
    monkeypatch.setenv("CXONE_BASE_URL", sim.base_url)
    monkeypatch.setenv("CXONE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("CXONE_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    audit = tmp_path / "audit.jsonl"
    code = _tutorial.main([*CAMPAIGNS, "--callback-url", sim.webhook_url, "--audit-log", str(audit)])
    assert code == 0
    summary: dict[str, Any] = json.loads(capsys.readouterr().out.splitlines()[-1])
    return summary, audit


def test_clean_data_every_eligible_attempt_archived_once_with_camel_case_bodies(
    start_sim, tmp_path, monkeypatch, capsys
):
    sim = start_sim(campaign_ids=CAMPAIGNS, attempts_per_campaign=450, **CLEAN)
    summary, audit = run_tutorial(sim, tmp_path, monkeypatch, capsys)

    eligible = set().union(*(sim.eligible_ids(c, set(APPROVED)) for c in CAMPAIGNS))
    ledger = sim.ledger()
    assert set(ledger) == eligible and all(n == 1 for n in ledger.values())
    assert summary == {"fetched": 900, "archived": len(eligible), "failed": 0, "aborted": {}}
    archive_bodies = [r["body"] for r in sim.requests() if r["kind"] == "archive"]
    assert archive_bodies and all("campaignId" in b and "forceColdStorage" in b for b in archive_bodies)
    item = archive_bodies[0]["items"][0]
    assert set(item) == {"contactId", "attemptId", "statusMatrix", "retentionPeriodDays", "deleteActive"}
    # One audit line and one callback per batch, as written.
    assert len(audit.read_text().splitlines()) == len(archive_bodies)
    assert len(sim.webhooks()) == len(archive_bodies)


def test_new_connection_for_every_request(start_sim, tmp_path, monkeypatch, capsys):
    sim = start_sim(campaign_ids=CAMPAIGNS, attempts_per_campaign=250, **CLEAN)
    run_tutorial(sim, tmp_path, monkeypatch, capsys)
    stats = sim.stats()
    calls = stats["total_requests"] + stats["webhooks"]["received"]
    assert stats["connections_opened"] == calls


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"unanonymized_rate": 0.05, "malformed_rate": 0.0, "retention_null_share": 0.0},
         "anonymization"),
        ({"unanonymized_rate": 0.0, "malformed_rate": 0.0, "retention_null_share": 1.0,
          "retention_rate": 0.5}, "retention_period_days"),
    ],
)
def test_its_defects_are_kept_a_bad_record_aborts_the_whole_campaign(
    start_sim, tmp_path, monkeypatch, capsys, data, reason
):
    sim = start_sim(campaign_ids=CAMPAIGNS, attempts_per_campaign=300, **data)
    summary, _ = run_tutorial(sim, tmp_path, monkeypatch, capsys)
    assert sorted(summary["aborted"]) == CAMPAIGNS
    assert all(reason in why for why in summary["aborted"].values())
    assert sim.ledger() == {}

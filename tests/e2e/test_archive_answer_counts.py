"""End to end: an archive answer's counts that do not account for every item sent.

The contract's answer says how many items were archived (``archivedCount``) and how
many failed (``failedCount``), never which. One that archived fewer than were sent
without counting the rest as failed has not said what became of them: the run must
find out from the listing, as for counted failures, and not record them archived.
``archiver run`` in a subprocess against a scripted server on a loopback socket.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from archiver.cxone import wire
from tests.cxone.server import FakeCxone, Reply, Seen, attempt, fake_env, offset_of
from tests.support import policy_dict, read_report, run_cli, write_policy

CAMPAIGN = "camp-counts"
RECORDS = [attempt(f"k-{n:02}") for n in range(10)]


class Tenant:
    """Lists the campaign's attempts not yet archived; archives what it is told, except
    that while ``drop`` is set it leaves the last item of a batch and counts it nowhere."""

    def __init__(self) -> None:
        self.archived: list[str] = []
        self.drop = True
        self._lock = threading.Lock()

    def listing(self, seen: Seen) -> Reply:
        offset, limit = offset_of(seen)
        with self._lock:
            left = [r for r in RECORDS if r["id"] not in self.archived]
        return Reply(200, left[offset : offset + limit])

    def archive(self, seen: Seen) -> Reply:
        items = [item["attemptId"] for item in seen.json()["items"]]
        done = items[:-1] if self.drop else items
        with self._lock:
            self.archived.extend(done)
        return Reply(200, {"archivedCount": len(done), "failedCount": 0,
                           "migrationJobId": "mig-1", "status": "COMPLETED",
                           "timestamp": "2026-01-01T00:00:00Z"})


@pytest.fixture
def fake() -> Iterator[FakeCxone]:
    server = FakeCxone().start()
    yield server
    server.stop()


def test_items_an_answer_does_not_count_are_found_in_the_listing_not_recorded_archived(
    tmp_path, fake
):
    tenant = Tenant()
    fake.respond("GET", wire.ATTEMPTS_PATH.format(campaign_id=CAMPAIGN), tenant.listing)
    fake.respond("POST", wire.ARCHIVE_PATH.format(campaign_id=CAMPAIGN), tenant.archive)
    policy = write_policy(tmp_path / "p.yaml", policy_dict([CAMPAIGN]))
    args = ["run", str(policy), "--state", str(tmp_path / "state")]

    first = run_cli([*args, "--report", str(tmp_path / "r1.json")], fake_env(fake))
    assert first.returncode == 1, first.stderr[-3000:]
    assert len(tenant.archived) == 9
    report = read_report(tmp_path / "r1.json")
    assert report["totals"]["archived"] == 9 and report["totals"]["failed"] == 1
    [reason] = [r["reason"] for c in report["campaigns"] for r in c["reasons"]
                if r["state"] == "failed"]
    assert "still listed after its batch" in reason

    tenant.drop = False
    second = run_cli([*args, "--report", str(tmp_path / "r2.json")], fake_env(fake))
    assert second.returncode == 0, second.stderr[-3000:]
    assert sorted(tenant.archived) == [r["id"] for r in RECORDS]
    assert read_report(tmp_path / "r2.json")["archived_in_this_run"] == 1

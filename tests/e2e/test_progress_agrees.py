"""The last log line of a campaign counts what the report counts: attempts a stopped
campaign leaves failed (listed, never in a batch) are among its failures there too."""

from __future__ import annotations

import re
import subprocess
import sys
import time

from archiver.simulator import Faults
from tests.support import (
    policy_dict,
    read_report,
    sim_env,
    terminate_once_archiving,
    write_policy,
)

CAMPAIGN = "cccccccc-0000-4000-8000-000000000003"
FINISHED = re.compile(
    r"campaign (\S+) [^:]*: listed (\d+), archived (\d+), failed (\d+) in [\d.]+ s"
)


def test_a_campaign_stopped_part_way_logs_the_failures_its_report_counts(tmp_path, start_sim):
    # Slow answers and one call at a time leave seconds between the first batch and the
    # last, to stop the run in.
    sim = start_sim(Faults(latency_ms=150), campaign_ids=[CAMPAIGN],
                    attempts_per_campaign=600, seed=12)
    doc = policy_dict([CAMPAIGN])
    doc["batch"]["max_items"] = 20
    doc["connection"]["max_in_flight"] = 1
    policy = write_policy(tmp_path / "p.yaml", doc)
    report_path = tmp_path / "r.json"
    args = [sys.executable, "-m", "archiver", "run", str(policy), "--state",
            str(tmp_path / "state"), "--report", str(report_path)]
    proc = subprocess.Popen(args, env=sim_env(sim), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stderr = terminate_once_archiving(proc, sim, time.monotonic() + 60)
    campaign = read_report(report_path)["campaigns"][0]
    assert campaign["failed"] > 0, campaign  # what the stop left undone
    found = [m.groups() for m in FINISHED.finditer(stderr)]
    assert found, stderr[-3000:]
    cid, listed, archived, failed = found[-1]
    assert cid == CAMPAIGN
    assert (int(listed), int(archived), int(failed)) == (
        campaign["listed"], campaign["archived"], campaign["failed"]
    ), stderr[-3000:]

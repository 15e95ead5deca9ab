"""The scale-out benchmark runs end to end at small sizes, so it cannot rot."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO


def test_two_workers_share_two_tenants_through_postgresql_and_the_ledgers_agree(
    postgres_admin_url,
):
    result = subprocess.run(
        [sys.executable, "benchmarks/scaleout.py", "--tenants", "2", "--campaigns", "2",
         "--attempts", "300", "--rate-limit", "50", "--postgres-url", postgres_admin_url],
        cwd=REPO, capture_output=True, text=True, timeout=110,
    )
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-2000:]
    assert "2 tenants x 2 campaigns x 300 attempts, 2 workers (same order)" in out
    assert out.count("worker 1  ") == 2 and out.count("worker 2  ") == 2
    rows = [line.split() for line in out.splitlines() if line.startswith("tenant") and "%" in line]
    assert len(rows) == 2 and all(row[-1] == "ok" for row in rows), out
    assert "total wall time:" in out and "FAILED" not in out

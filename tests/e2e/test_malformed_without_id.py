"""Listed records without a usable id (missing, null, empty, a bare ``{}``), run after run.

Such a record is quarantined under a name drawn from its own content, not from its
place in the listing. A first run archives attempts, so the second run lists every
malformed record at another offset: it must still find the rows the first run wrote
(as many as before), and count each malformed record once. Two records with the same
content (the ``{}`` ones) are rows of their own, ``copy 2`` and on, in both runs.
Against the real simulator over loopback, with the store in SQLite and in PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from archiver.simulator.config import NO_ID_KINDS, SimConfig
from archiver.simulator.dataset import CampaignData, derive_tags
from tests.support import policy_dict, read_report, run_cli, sim_env, write_policy

CAMPAIGN = "5f0c1d2e-0000-4000-8000-00000000a1d0"
SIM = {
    "campaign_ids": [CAMPAIGN],
    "attempts_per_campaign": 400,
    "seed": 29,
    "malformed_rate": 0.08,
    "malformed_kinds": list(NO_ID_KINDS),
}
NO_ID_NAME = re.compile(r"\(no id, sha256 [0-9a-f]{16}(, copy [2-9]\d*)?\)")
MALFORMED = "malformed record"


def no_id_rows(state: str) -> dict[str, tuple[str, str]]:
    """The store's rows of records without an id: name -> (state, run id)."""
    sql = ("SELECT attempt_id, state, run_id FROM attempts WHERE campaign_id = %s"
           " AND attempt_id LIKE '(no id%%'")
    if state.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(state) as pg:
            rows = pg.execute(sql, (CAMPAIGN,)).fetchall()
    else:
        with sqlite3.connect(Path(state) / "state.db") as db:
            rows = db.execute(sql.replace("%s", "?").replace("%%", "%"), (CAMPAIGN,)).fetchall()
    return {name: (st, run) for name, st, run in rows}


def malformed_counted(report: dict[str, Any]) -> int:
    """How many attempts the run's report counts quarantined as malformed records."""
    (campaign,) = report["campaigns"]
    return sum(r["count"] for r in campaign["reasons"]
               if r["state"] == "quarantined" and r["reason"].startswith(MALFORMED))


def served_without_id() -> list[dict[str, Any]]:
    """The simulator's records without an id, in listing order (its data set, read directly)."""
    config = SimConfig(**SIM)
    data = CampaignData(CAMPAIGN, derive_tags(config.seed, [CAMPAIGN])[0], config)
    return [data.record(i) for i in range(data.size) if data.draw(i).malformed is not None]


def expected_names(records: list[dict[str, Any]]) -> set[str]:
    """A short SHA-256 of each record's canonical JSON; ``copy N`` for the Nth same content."""
    seen: Counter[str] = Counter()
    names = set()
    for record in records:
        text = json.dumps(record, sort_keys=True, separators=(",", ":"))
        short = hashlib.sha256(text.encode()).hexdigest()[:16]
        seen[short] += 1
        n = seen[short]
        names.add(f"(no id, sha256 {short})" if n == 1 else f"(no id, sha256 {short}, copy {n})")
    return names


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "state")


def test_a_rerun_finds_the_rows_of_records_without_an_id_and_counts_each_once(
    tmp_path: Path, start_sim, state: str
) -> None:
    sim = start_sim(**SIM)
    expected = sim.campaigns()[CAMPAIGN]["expected"]
    malformed = expected["malformed"]
    kinds = expected["malformed_by_kind"]
    assert set(kinds) == set(NO_ID_KINDS), kinds
    assert kinds["empty_record"] >= 2, "two records of the same content in one listing"

    doc = policy_dict([CAMPAIGN])
    doc["source"]["page_size"] = 50
    doc["batch"]["max_items"] = 40
    policy = write_policy(tmp_path / "policy.yaml", doc)
    env = sim_env(sim)

    first = run_cli(["run", str(policy), "--state", state, "--report",
                     str(tmp_path / "r1.json")], env)
    assert first.returncode == 0, first.stderr[-3000:]
    r1 = read_report(tmp_path / "r1.json")
    after_first = no_id_rows(state)
    archived = r1["totals"]["archived"]
    assert archived > 0 and len(sim.ledger()) == archived, "offsets shift for the rerun"
    assert r1["totals"]["listed"] == 400
    assert malformed_counted(r1) == malformed

    second = run_cli(["run", str(policy), "--state", state, "--report",
                      str(tmp_path / "r2.json")], env)
    assert second.returncode == 0, second.stderr[-3000:]
    r2 = read_report(tmp_path / "r2.json")
    after_second = no_id_rows(state)
    assert r2["totals"]["listed"] == 400 - archived
    assert r2["totals"]["archived"] == 0

    # As many rows after the rerun as after the first run: the same ones, now the rerun's.
    assert (len(after_first), len(after_second)) == (malformed, malformed)
    assert set(after_second) == set(after_first)
    assert {s for s, _ in after_second.values()} == {"quarantined"}
    assert {run for _, run in after_second.values()} == {r2["run_id"]}
    assert malformed_counted(r2) == malformed

    # Named by content (the {} records: one name, then copy 2, 3, ...), nothing of the
    # record itself in the name.
    assert set(after_second) == expected_names(served_without_id())
    assert all(NO_ID_NAME.fullmatch(name) for name in after_second), sorted(after_second)
    empty = f"(no id, sha256 {hashlib.sha256(b'{}').hexdigest()[:16]}"
    assert sum(name.startswith(empty) for name in after_second) == kinds["empty_record"]

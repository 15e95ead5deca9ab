"""``api: cxone`` with ``action: export`` through the CLI, against the simulator's cxone
personality over real sockets: the archive is the file sink's files, each vouched for by
its batch's audit line, and nothing is written twice."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from archiver.simulator.cxone import Behaviour, CxoneSimConfig, CxoneSimulator
from tests.support import run_cli
from tests.support_cxone import (
    archive_files,
    audit_lines,
    cxone_env,
    cxone_policy,
    sha256_of,
)


def test_export_writes_one_file_per_batch_that_the_audit_log_vouches_for(tmp_path):
    with CxoneSimulator(CxoneSimConfig(contacts_per_campaign=120)) as sim:
        campaigns = sim.campaign_ids
        policy = cxone_policy(tmp_path, sim, campaigns)
        state = tmp_path / "state"
        args = ["run", str(policy), "--state", str(state)]
        first = run_cli(args, cxone_env(sim))
        assert first.returncode == 0, first.stderr[-3000:]
        files = archive_files(tmp_path / "archive")
        lines = audit_lines(tmp_path / "audit" / "audit.jsonl")
        # Nothing on the tenant changed: no removal, no skill stopped.
        assert sim.ledger() == {"requested": {}, "removed": {}}
        assert all(s["stops"] == 0 for s in sim.skills().values())
        exported = {c: set(sim.contacts(c)) for c in campaigns}

    batches = [line for line in lines if line["event"] == "batch_archived"]
    assert len(files) == len(batches) > 2
    for line in batches:
        [entry] = line["files"]
        path = tmp_path / entry["path"]
        assert path.parent.parent.name == line["campaign_id"]
        assert entry["sha256"] == sha256_of(path), "the audit line names the file's digest"
        assert entry["records"] == len(files[path]) == line["result"]["archived_count"]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert {r["id"] for r in files[path]} == set(line["attempt_ids"])
    ids = [r["id"] for records in files.values() for r in records]
    assert len(ids) == len(set(ids)), "no attempt in two files"
    for records in files.values():
        for record in records:
            assert "anonymized" not in record, "cxone lists no such flag: the file claims none"
            assert record["campaign_id"] in campaigns and record["retention_days"] in (365, 730)
            assert set(ids) <= set().union(*exported.values())
    assert not list((tmp_path / "archive").rglob(".*.tmp")), "no temporary file left"
    verify = run_cli(["audit", "verify", str(tmp_path / "audit" / "audit.jsonl")], os.environ.copy())
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_rerun_lists_from_the_watermark_and_writes_nothing_twice(tmp_path):
    with CxoneSimulator(CxoneSimConfig(campaigns=1, contacts_per_campaign=90)) as sim:
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids)
        args = ["run", str(policy), "--state", str(tmp_path / "state")]
        env = cxone_env(sim)
        assert run_cli(args, env).returncode == 0
        before = {p: (sha256_of(p), p.stat().st_mtime_ns) for p in archive_files(tmp_path)}
        requests_before = len(sim.requests())
        again = run_cli(args, env)
        assert again.returncode == 0, again.stderr[-3000:]
        listings = [r for r in sim.requests()[requests_before:]
                    if r["path"].endswith("contacts/completed")]
    after = {p: (sha256_of(p), p.stat().st_mtime_ns) for p in archive_files(tmp_path)}
    assert after == before, "no file written again"
    # The rerun starts from the stored watermark, not from source.since.
    assert listings and all(q["query"]["updatedSince"] > "2026-09-01" for q in listings)
    batches = [x for x in audit_lines(tmp_path / "audit" / "audit.jsonl")
               if x["event"] == "batch_archived"]
    assert len({b["batch_id"] for b in batches}) == len(batches) == len(before)


def test_a_batch_file_left_by_a_killed_run_is_found_not_rewritten(tmp_path):
    with CxoneSimulator(CxoneSimConfig(campaigns=1, contacts_per_campaign=60)) as sim:
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids)
        args = ["run", str(policy), "--state", str(tmp_path / "state")]
        env = cxone_env(sim)
        # Killed once a batch's file is written, before the batch is recorded: the batch is
        # still open at the next start, and sent again.
        crashed = run_cli(args, {**env, "ARCHIVER_FAILPOINT": "archive_written:1"})
        assert crashed.returncode == -9
        written = {p: sha256_of(p) for p in archive_files(tmp_path)}
        assert written
        assert not (tmp_path / "audit" / "audit.jsonl").exists() or all(
            x["event"] != "batch_archived" for x in audit_lines(tmp_path / "audit" / "audit.jsonl")
        )
        final = run_cli(args, env)
        assert final.returncode == 0, final.stderr[-3000:]
    files = archive_files(tmp_path)
    assert all(sha256_of(p) == digest for p, digest in written.items())
    lines = [x for x in audit_lines(tmp_path / "audit" / "audit.jsonl")
             if x["event"] == "batch_archived"]
    assert len(lines) == len(files)
    for line in lines:
        assert line["files"][0]["sha256"] == sha256_of(tmp_path / line["files"][0]["path"])


def test_churn_while_paging_misses_nothing_and_repeats_nothing(tmp_path):
    behaviour = Behaviour(churn_per_request=4)
    with CxoneSimulator(CxoneSimConfig(campaigns=1, contacts_per_campaign=200), behaviour) as sim:
        [cid] = sim.campaign_ids
        policy = cxone_policy(tmp_path, sim, [cid])
        args = ["run", str(policy), "--state", str(tmp_path / "state")]
        env = cxone_env(sim)
        first = run_cli(args, env)
        assert first.returncode == 0, first.stderr[-3000:]
        assert sim.app.contacts.churned > 0
        sim.set(churn_per_request=0)
        second = run_cli(args, env)  # what changed after the first run's start
        assert second.returncode == 0, second.stderr[-3000:]
        contacts = set(sim.contacts(cid))
    ids = [r["id"] for records in archive_files(tmp_path / "archive").values() for r in records]
    assert len(ids) == len(set(ids)), "no contact exported twice, across runs"
    decided = _decided(tmp_path / "state", cid)
    assert set(decided) == contacts, "every contact listed and decided"
    assert {i for i, state in decided.items() if state == "archived"} == set(ids)


def _decided(state: Path, campaign_id: str) -> dict[str, str]:
    import sqlite3

    with sqlite3.connect(state / "state.db") as db:
        return dict(db.execute(
            "SELECT attempt_id, state FROM attempts WHERE campaign_id = ?", (campaign_id,)
        ).fetchall())


def test_the_run_report_times_every_cxone_call_the_simulator_answered(tmp_path):
    import json

    with CxoneSimulator(CxoneSimConfig(campaigns=2, contacts_per_campaign=60)) as sim:
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids)
        report_path = tmp_path / "report.json"
        run = run_cli(["run", str(policy), "--state", str(tmp_path / "state"),
                       "--report", str(report_path)], cxone_env(sim))
        assert run.returncode == 0, run.stderr[-3000:]
        answered = [e for e in sim.requests() if not e["path"].startswith("/_sim/")]
    report = json.loads(report_path.read_text())
    api = report["api"]
    # One report row per endpoint; ids in a path are folded into {id}.
    assert "GET contacts/completed" in api["endpoints"]
    assert any(name.startswith("POST ") and "token" in name for name in api["endpoints"])
    assert api["requests"] == len(answered) > 0
    for campaign in report["campaigns"]:
        assert campaign["api"]["endpoints"]["GET contacts/completed"]["requests"] > 0
    assert "API calls" in run.stdout + run.stderr


def test_a_hold_placed_after_a_kill_keeps_its_attempt_out_of_every_archive_file(tmp_path):
    """Killed once a batch's file is written, before the batch is recorded; a hold on one
    of its attempts arrives before the rerun. The rerun does not send that batch again:
    its other attempts go into new batches. The file the dead run left is no archive of
    record (no audit line vouches for it) and must not stay beside them: the held attempt
    would be exported, and the others in two files."""
    with CxoneSimulator(CxoneSimConfig(campaigns=1, contacts_per_campaign=60)) as sim:
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids, max_in_flight=1)
        args = ["run", str(policy), "--state", str(tmp_path / "state")]
        env = cxone_env(sim)
        crashed = run_cli(args, {**env, "ARCHIVER_FAILPOINT": "archive_written:1"})
        assert crashed.returncode == -9
        [left] = archive_files(tmp_path / "archive").values()
        held = left[3]["id"]
        (tmp_path / "holds").mkdir()
        (tmp_path / "holds" / "lit.yaml").write_text(
            f"case: LIT-9\nplaced_by: legal@example.com\nattempts: ['{held}']\n"
        )
        policy.write_text(policy.read_text() + "holds: [holds/lit.yaml]\n")
        final = run_cli(args, env)
        assert final.returncode == 0, final.stderr[-3000:]
        contacts = set(sim.contacts(sim.campaign_ids[0]))
    files = archive_files(tmp_path / "archive")
    ids = [r["id"] for records in files.values() for r in records]
    assert len(ids) == len(set(ids)), "no attempt in two files"
    assert held not in ids, "the held attempt is in no archive file"
    assert set(ids) == contacts - {held}
    decided = _decided(tmp_path / "state", sim.campaign_ids[0])
    assert decided[held] == "held"
    lines = [x for x in audit_lines(tmp_path / "audit" / "audit.jsonl")
             if x["event"] == "batch_archived"]
    assert len(lines) == len(files), "every file on disk is vouched for by an audit line"
    for line in lines:
        assert line["files"][0]["sha256"] == sha256_of(tmp_path / line["files"][0]["path"])

"""``api: cxone`` with ``action: export``, killed at every failpoint it reaches (its first,
a middle and its last time), its disk filled at the points where a file is written, and
stopped once with SIGTERM; some with a legal hold placed before the rerun. After the rerun
every check reads the ground truth on its own: the simulator's contacts and their
dispositions, the archive files on disk, the audit chain against the state store, the
run report and the webhook receiver.

An export changes nothing on the tenant, so one simulator (and one webhook receiver)
serves every case of the module: each case has its own folder, state store and policy
name (the receiver's deliveries are told apart by it), and the cases of one failpoint
run side by side."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from archiver.simulator import SimConfig, Simulator
from archiver.simulator.cxone import CxoneSimConfig, CxoneSimulator
from tests.support import REPO, WEBHOOK_SECRET, run_cli
from tests.support_cxone import archive_files, audit_lines, cxone_env, cxone_policy, sha256_of

# Two campaigns of 120 contacts, pages of 40 and batches of 25: each campaign lists 4
# pages and exports 4 batches of the contacts these outcomes approve (92 and 83); the
# rest are skipped. Each batch's event goes to the audit log and the webhook, and so do
# the run's two: the outbox points are reached 18 times.
EXPORTED = ["Survey Taken", "No Answer", "Disconnected", "Callback Requested",
            "Answering Machine", "(none)"]
SIGKILL = -9
STORAGE_FAILED = 74

# Per failpoint, the n-th times it is reached that a run is killed at (its first, a middle
# and its last), each with whether a legal hold arrives before the rerun. archive_written:
# a batch's file is on disk, its batch not recorded. campaign_paused is never reached: an
# export pauses nothing.
KILLS: dict[str, list[tuple[int, bool]]] = {
    "page_listed": [(1, False), (4, True), (8, False)],
    "batch_prepared": [(1, False), (4, True), (8, False)],
    "batch_posted": [(1, False), (4, True), (8, False)],
    "archive_written": [(1, False), (4, True), (8, False)],
    "batch_recorded": [(1, False), (4, True), (8, False)],
    "event_delivering": [(1, False), (9, True), (18, False)],
    "event_delivered": [(1, False), (9, True), (18, False)],
    "run_finishing": [(1, False)],
}
# The disk fills at the point and stays full: the next write is a batch's archive file
# (batch_posted; archive_written: the file after the one just written), an audit line
# (event_delivering) or the state store (batch_recorded).
FULL = [("batch_posted", 4, False), ("archive_written", 1, False),
        ("archive_written", 4, True), ("event_delivering", 9, False),
        ("batch_recorded", 4, True)]


class Tenant:
    def __init__(self, sim: CxoneSimulator, receiver: Simulator) -> None:
        self.sim = sim
        self.receiver = receiver

    def exported_by_rule(self) -> set[str]:
        """Every contact the policy exports, from the simulator's own records."""
        return {
            contact
            for campaign in self.sim.campaign_ids
            for contact, name in self.sim.dispositions(campaign).items()
            if (name or "(none)") in EXPORTED
        }

    def contacts(self) -> set[str]:
        return {c for campaign in self.sim.campaign_ids for c in self.sim.contacts(campaign)}


@pytest.fixture(scope="module")
def tenant() -> Iterator[Tenant]:
    config = CxoneSimConfig(campaigns=2, contacts_per_campaign=120)
    receiver_config = SimConfig(campaign_ids=["receiver"], attempts_per_campaign=1,
                                webhook_secret=WEBHOOK_SECRET)
    with CxoneSimulator(config) as sim, Simulator(receiver_config) as receiver:
        yield Tenant(sim, receiver)


def export_policy(tmp_path: Path, tenant: Tenant, name: str, **connection: Any) -> Path:
    policy = cxone_policy(tmp_path, tenant.sim, tenant.sim.campaign_ids, approved=EXPORTED,
                          **connection)
    doc = yaml.safe_load(policy.read_text())
    doc["name"] = name
    doc["sinks"].append({"type": "webhook", "url": tenant.receiver.webhook_url,
                         "secret_env": "DW_WEBHOOK_SECRET"})
    doc["holds"] = ["holds/lit.yaml"]
    (tmp_path / "holds").mkdir()
    (tmp_path / "holds" / "lit.yaml").write_text("case: LIT-7\nplaced_by: legal@example.com\n")
    policy.write_text(yaml.safe_dump(doc, sort_keys=False))
    return policy


def store_rows(state: Path | str, sql: str) -> list[tuple[Any, ...]]:
    if isinstance(state, str):
        import psycopg

        with psycopg.connect(state) as pg:
            return list(pg.execute(sql).fetchall())
    with sqlite3.connect(state / "state.db") as db:
        return db.execute(sql).fetchall()


def place_hold(tmp_path: Path, tenant: Tenant, state: Path | str) -> str | None:
    """A hold on the first attempt of a batch the stopped run left open, else on a
    contact the policy exports that is not archived yet; its id (None: every one is)."""
    in_open = store_rows(state, "SELECT attempts.attempt_id FROM attempts JOIN batches"
                                " ON attempts.batch_id = batches.id"
                                " WHERE batches.status = 'prepared' ORDER BY 1")
    if in_open:
        held = str(in_open[0][0])
    else:
        archived = {r[0] for r in store_rows(
            state, "SELECT attempt_id FROM attempts WHERE state = 'archived'")}
        waiting = sorted(tenant.exported_by_rule() - archived)
        if not waiting:
            return None
        held = waiting[len(waiting) // 2]
    (tmp_path / "holds" / "lit.yaml").write_text(
        f"case: LIT-7\nplaced_by: legal@example.com\nattempts: ['{held}']\n"
    )
    return held


def check_exported_once(
    tmp_path: Path, tenant: Tenant, state: Path | str, env: dict[str, str], name: str,
    held: str | None,
) -> None:
    """What a finished rerun must have left, read from each source on its own."""
    exported = tenant.exported_by_rule() - {held}

    # The archive on disk: each exported contact in exactly one file, nothing else there.
    archive = tmp_path / "archive"
    files = archive_files(archive)
    ids = [r["id"] for records in files.values() for r in records]
    assert len(ids) == len(set(ids)), "no contact in two files"
    assert set(ids) == exported, (
        f"missing {sorted(exported - set(ids))}, not to be exported {sorted(set(ids) - exported)}"
    )
    others = [p for p in archive.rglob("*") if p.is_file() and p not in files]
    assert others == [], "no temporary or half-written file left in the archive folder"

    # The audit log: a line per file, naming its digest, its count and its contacts.
    audit = tmp_path / "audit" / "audit.jsonl"
    lines = audit_lines(audit)
    assert len({x["event_id"] for x in lines}) == len(lines), "no audit line written twice"
    batches = [x for x in lines if x["event"] == "batch_archived"]
    vouched = {}
    for line in batches:
        [entry] = line["files"]
        path = tmp_path / entry["path"]
        vouched[path] = line["batch_id"]
        assert entry["sha256"] == sha256_of(path)
        assert entry["records"] == len(files[path]) == line["result"]["archived_count"]
        assert {r["id"] for r in files[path]} == set(line["attempt_ids"])
    assert set(vouched) == set(files), "every file has its audit line, every line its file"
    verify = run_cli(["audit", "verify", str(audit), "--state", str(state)], env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "matches the state store" in verify.stdout

    # The state store: each contact in one final state, no batch left open.
    states = dict(store_rows(state, "SELECT attempt_id, state FROM attempts"))
    assert set(states) == tenant.contacts(), "every contact listed"
    expected = {c: "archived" if c in exported else "skipped" for c in states}
    if held is not None:
        expected[held] = "held"
    assert states == expected
    assert store_rows(state, "SELECT id FROM batches WHERE status = 'prepared'") == []
    done = {r[0] for r in store_rows(
        state, "SELECT id FROM batches WHERE status = 'done' AND archived_count > 0")}
    assert done == set(vouched.values())

    # The rerun's report: its counts are the store's, its own exports the audit's.
    report = json.loads((tmp_path / "report.json").read_text())
    totals = report["totals"]
    run_id = report["run_id"]
    mine: dict[str, int] = {}
    for (s,) in store_rows(state, f"SELECT state FROM attempts WHERE run_id = '{run_id}'"):
        mine[s] = mine.get(s, 0) + 1
    counted = ("archived", "skipped", "quarantined", "held", "failed", "pending")
    assert {s: totals[s] for s in counted if totals[s]} == mine
    assert totals["listed"] == sum(mine.values()) and totals["reconciled"] == 0
    assert report["archived_in_this_run"] == sum(
        x["result"]["archived_count"] for x in batches if x["run_id"] == run_id)

    # The webhook receiver: each batch's event accepted, under one id.
    ids_by_batch: dict[str, set[str]] = {}
    for d in tenant.receiver.webhooks():
        body = d["body"]
        if (d["status"] == 204 and d["valid"] and body.get("policy") == name
                and body.get("type") == "batch_archived"):
            ids_by_batch.setdefault(body["batch_id"], set()).add(d["id"])
    assert set(ids_by_batch) == done, "every batch's event delivered"
    assert all(len(ids) == 1 for ids in ids_by_batch.values()), "one webhook-id per batch"


def stop_and_rerun(
    tmp_path: Path, tenant: Tenant, failpoint: str, expect: int, hold: bool,
    state: Path | str | None = None,
) -> None:
    """A run stopped at ``failpoint`` (its exit code ``expect``), a hold placed when
    ``hold``, a rerun to the end, and every check of ``check_exported_once``. The policy
    is named after the case (the store and the failpoint), so that the webhooks the
    receiver got from other cases of the module are told apart."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = "pg" if isinstance(state, str) else "sqlite"
    name = f"export-{store}-" + failpoint.replace(":", "-").replace("_", "-")
    policy = export_policy(tmp_path, tenant, name)
    state = state if state is not None else tmp_path / "state"
    env = cxone_env(tenant.sim, DW_WEBHOOK_SECRET=WEBHOOK_SECRET)
    args = ["run", str(policy), "--state", str(state), "--report", str(tmp_path / "report.json")]
    stopped = run_cli(args, {**env, "ARCHIVER_FAILPOINT": failpoint})
    assert stopped.returncode == expect, stopped.stderr[-3000:]
    held = place_hold(tmp_path, tenant, state) if hold else None
    final = run_cli(args, env)
    assert final.returncode == 0, final.stderr[-3000:]
    check_exported_once(tmp_path, tenant, state, env, name, held)


def side_by_side(cases: dict[str, Callable[[], None]]) -> None:
    """Run the cases at once (each its own runs, folders and state store; they wait on
    their subprocesses), then fail naming every case that failed and why."""
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        futures = {name: pool.submit(case) for name, case in cases.items()}
    failed = {}
    for name, future in futures.items():
        err = future.exception()
        if err is not None:
            failed[name] = "".join(traceback.format_exception(err))[-3000:]
    assert not failed, "\n\n".join(f"{name}:\n{why}" for name, why in failed.items())


@pytest.mark.parametrize("point", list(KILLS))
def test_sigkill_then_rerun_exports_each_contact_in_exactly_one_file(tmp_path, tenant, point):
    side_by_side({
        f"{point}:{nth}{' with a hold' if hold else ''}": partial(
            stop_and_rerun, tmp_path / str(nth), tenant, f"{point}:{nth}", SIGKILL, hold)
        for nth, hold in KILLS[point]
    })


def test_a_full_disk_then_rerun_exports_each_contact_in_exactly_one_file(tmp_path, tenant):
    side_by_side({
        f"{point}:{nth}:full{' with a hold' if hold else ''}": partial(
            stop_and_rerun, tmp_path / f"{point}-{nth}", tenant, f"{point}:{nth}:full",
            STORAGE_FAILED, hold)
        for point, nth, hold in FULL
    })


def test_sigkill_with_a_postgresql_store_then_rerun_exports_each_contact_once(
    tmp_path, tenant, postgres_url
):
    import psycopg

    from tests.pgserver import with_options

    # A schema each; one case after the other: the campaigns' locks are the database's,
    # so runs of two cases at once would find each other's campaigns busy.
    for point, nth in [("batch_posted", 4), ("archive_written", 4)]:
        with psycopg.connect(postgres_url, autocommit=True) as pg:
            pg.execute(f"CREATE SCHEMA {point}")
        stop_and_rerun(tmp_path / point, tenant, f"{point}:{nth}", SIGKILL, True,
                       state=with_options(postgres_url, search_path=point))


def test_a_file_a_full_disk_cut_short_is_not_left_beside_the_batch_a_hold_reconciles(
    tmp_path, tenant
):
    """The disk fills as the first batch's file is written: its temporary file stays,
    the batch stays open. A hold then covers one of its contacts, so the rerun does not
    send that batch again, and removes what the dead run wrote of it: its temporary file
    too, not only a file under the batch's name."""
    policy = export_policy(tmp_path, tenant, "export-cut-short", max_in_flight=1)
    state = tmp_path / "state"
    env = cxone_env(tenant.sim, DW_WEBHOOK_SECRET=WEBHOOK_SECRET)
    args = ["run", str(policy), "--state", str(state), "--report", str(tmp_path / "report.json")]
    stopped = run_cli(args, {**env, "ARCHIVER_FAILPOINT": "batch_posted:1:full"})
    assert stopped.returncode == STORAGE_FAILED, stopped.stderr[-3000:]
    [left] = [p for p in (tmp_path / "archive").rglob("*") if p.is_file()]
    [(batch_id,)] = store_rows(state, "SELECT id FROM batches WHERE status = 'prepared'")
    assert left.name == f".{batch_id}.jsonl.gz.tmp", "the cut-short file is the open batch's"
    held = place_hold(tmp_path, tenant, state)
    final = run_cli(args, env)
    assert final.returncode == 0, final.stderr[-3000:]
    assert not left.exists()
    check_exported_once(tmp_path, tenant, state, env, "export-cut-short", held)


def test_sigterm_mid_export_then_rerun_exports_each_contact_in_exactly_one_file(
    tmp_path, tenant
):
    """One SIGTERM once the first file is on disk: the run stops part-way (exit 1), and
    the rerun exports the rest, nothing twice. Its own tenant: more contacts, so that the
    export outlasts the signal."""
    config = CxoneSimConfig(campaigns=1, contacts_per_campaign=900)
    with CxoneSimulator(config) as sim:
        big = Tenant(sim, tenant.receiver)
        policy = export_policy(tmp_path, big, "export-sigterm", max_in_flight=1)
        state = tmp_path / "state"
        env = cxone_env(sim, DW_WEBHOOK_SECRET=WEBHOOK_SECRET)
        args = ["run", str(policy), "--state", str(state), "--report",
                str(tmp_path / "report.json")]
        proc = subprocess.Popen([sys.executable, "-m", "archiver", *args], env=env, cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not archive_files(tmp_path / "archive"):
            assert time.monotonic() < deadline and proc.poll() is None, "nothing was exported"
            time.sleep(0.01)
        # Every answer held back from here: on a loaded machine the rest of the export
        # could otherwise end before the signal is handled.
        sim.set(latency_seconds=0.2)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        sim.set(latency_seconds=0.0)
        assert proc.returncode == 1, stderr[-3000:]
        exported = {r[0] for r in store_rows(
            state, "SELECT attempt_id FROM attempts WHERE state = 'archived'")}
        assert exported and exported < big.exported_by_rule(), "stopped part-way"
        final = run_cli(args, env)
        assert final.returncode == 0, final.stderr[-3000:]
        check_exported_once(tmp_path, big, state, env, "export-sigterm", None)

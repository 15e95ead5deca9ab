"""``action: retire`` through the CLI against the simulator's cxone personality: killed
with SIGKILL at every failpoint, run again, and no prospect is removed twice (the
simulator's ledger), every retired attempt is archived once, and the campaign's skills
dial again."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archiver.engine.failpoints import POINTS
from archiver.simulator.cxone import Behaviour, CxoneSimConfig, CxoneSimulator
from tests.support import run_cli
from tests.support_cxone import archive_files, audit_lines, cxone_env, cxone_policy

CONFIG = CxoneSimConfig(campaigns=1, call_lists=1, prospects_per_list=60)
RETIRE_SOURCE = {"type": "call_list_attempts", "call_list": "4412", "page_size": 30}
SIGKILL = -9


def retire_policy(tmp_path: Path, sim: CxoneSimulator) -> Path:
    return cxone_policy(tmp_path, sim, sim.campaign_ids, action="retire", source=RETIRE_SOURCE)


def archived_in_store(state: Path) -> set[str]:
    with sqlite3.connect(state / "state.db") as db:
        rows = db.execute("SELECT attempt_id FROM attempts WHERE state = 'archived'").fetchall()
    return {r[0] for r in rows}


def check_each_archived_once(sim: CxoneSimulator, tmp_path: Path, before: dict[str, str]
                             ) -> None:
    """Every prospect finalized ``before`` left the list, and each of its attempts is
    archived once, in the store and in exactly one archive file."""
    assert sim.finalized_attempts("4412") == {}, "every finalized prospect retired"
    assert set(sim.ledger()["removed"]) == set(before.values())
    assert archived_in_store(tmp_path / "state") == set(before), "each attempt archived once"
    files = archive_files(tmp_path / "archive")
    ids = [r["id"] for records in files.values() for r in records]
    assert sorted(ids) == sorted(before), "each retired attempt in exactly one archive file"


def check_retired_once(sim: CxoneSimulator, tmp_path: Path, before: dict[str, str]) -> None:
    ledger = sim.ledger()
    assert ledger["removed"], "prospects were retired"
    assert [e for e, n in ledger["requested"].items() if n != 1] == [], (
        "no prospect asked to be removed twice"
    )
    assert all(n == 1 for n in ledger["removed"].values())
    check_each_archived_once(sim, tmp_path, before)
    lines = [x for x in audit_lines(tmp_path / "audit" / "audit.jsonl")
             if x["event"] == "batch_archived"]
    files = archive_files(tmp_path / "archive")
    assert len({x["batch_id"] for x in lines}) == len(lines) == len(files)
    skills = sim.skills()
    assert skills and all(s["isRunning"] for s in skills.values()), "skills dial again"


def test_retire_removes_each_prospect_once_and_restarts_the_skills_it_stopped(tmp_path):
    with CxoneSimulator(CONFIG) as sim:
        before = sim.finalized_attempts("4412")
        result = run_cli(["run", str(retire_policy(tmp_path, sim)), "--state",
                          str(tmp_path / "state")], cxone_env(sim))
        assert result.returncode == 0, result.stderr[-3000:]
        check_retired_once(sim, tmp_path, before)
        assert all(s["stops"] == 1 and s["starts"] == 1 for s in sim.skills().values())


@pytest.mark.parametrize("point", sorted(POINTS))
def test_sigkill_at_each_failpoint_then_rerun_removes_nothing_twice(tmp_path, point):
    with CxoneSimulator(CONFIG, Behaviour(invented_stop_delay_seconds=0.05)) as sim:
        before = sim.finalized_attempts("4412")
        args = ["run", str(retire_policy(tmp_path, sim)), "--state", str(tmp_path / "state")]
        env = cxone_env(sim)
        crashed = run_cli(args, {**env, "ARCHIVER_FAILPOINT": f"{point}:1"})
        assert crashed.returncode == SIGKILL, (point, crashed.stderr[-2000:])
        final = run_cli(args, env)
        assert final.returncode == 0, final.stderr[-3000:]
        check_retired_once(sim, tmp_path, before)


def test_a_prospect_is_never_split_across_batches_so_a_kill_after_its_removal_loses_none(
    tmp_path,
):
    """One call in flight and a kill right after the first removal: the prospect whose
    attempts straddle the first 25-attempt cut was removed by that batch, so every one of
    its attempts must have been in it (the rerun never lists them again)."""
    with CxoneSimulator(CONFIG) as sim:
        before = sim.finalized_attempts("4412")
        by_prospect: dict[str, list[str]] = {}
        for attempt, prospect in sorted(before.items()):
            by_prospect.setdefault(prospect, []).append(attempt)
        first_cut = sorted(before)[:25]
        assert any(
            set(ids) & set(first_cut) and not set(ids) <= set(first_cut)
            for ids in by_prospect.values()
        ), "the seeded list has a prospect straddling the first cut (the case under test)"
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids, action="retire",
                              source=RETIRE_SOURCE, max_in_flight=1)
        args = ["run", str(policy), "--state", str(tmp_path / "state")]
        env = cxone_env(sim)
        crashed = run_cli(args, {**env, "ARCHIVER_FAILPOINT": "batch_posted:1"})
        assert crashed.returncode == SIGKILL, crashed.stderr[-2000:]
        final = run_cli(args, env)
        assert final.returncode == 0, final.stderr[-3000:]
        check_retired_once(sim, tmp_path, before)
        with sqlite3.connect(tmp_path / "state" / "state.db") as db:
            rows = db.execute("SELECT batch_id, contact_id FROM attempts").fetchall()
        batches_of: dict[str, set[str]] = {}
        for batch_id, prospect in rows:
            batches_of.setdefault(prospect, set()).add(batch_id)
        assert all(len(b) == 1 for b in batches_of.values()), "one batch per prospect"


def test_a_hold_on_one_attempt_keeps_its_whole_prospect_on_the_calling_list(tmp_path):
    """Removing a prospect takes all its attempts: one held attempt holds them all."""
    with CxoneSimulator(CONFIG) as sim:
        before = sim.finalized_attempts("4412")
        by_prospect: dict[str, list[str]] = {}
        for attempt, prospect in sorted(before.items()):
            by_prospect.setdefault(prospect, []).append(attempt)
        prospect, attempts = next((p, a) for p, a in by_prospect.items() if len(a) > 1)
        (tmp_path / "holds").mkdir()
        (tmp_path / "holds" / "lit.yaml").write_text(
            f"case: LIT-9\nplaced_by: legal@example.com\nattempts: ['{attempts[-1]}']\n"
        )
        policy = retire_policy(tmp_path, sim)
        policy.write_text(policy.read_text() + "holds: [holds/lit.yaml]\n")
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "state")],
                         cxone_env(sim))
        assert result.returncode == 0, result.stderr[-3000:]
        assert sim.ledger()["requested"].get(prospect, 0) == 0, "the held prospect was kept"
        assert set(sim.finalized_attempts("4412").values()) == {prospect}
        with sqlite3.connect(tmp_path / "state" / "state.db") as db:
            states = dict(db.execute(
                "SELECT attempt_id, state FROM attempts WHERE contact_id = ?", (prospect,)
            ).fetchall())
        assert states == {a: "held" for a in attempts}
        archived = archived_in_store(tmp_path / "state")
        assert archived == set(before) - set(attempts)


def test_a_pause_refused_by_one_skill_restarts_the_skills_it_had_stopped(tmp_path):
    """The campaign's first skill stops, its second refuses (409) and keeps dialing: the
    campaign fails, and the run ends with the first skill dialing again, not left stopped
    until some later run."""
    behaviour = Behaviour(invented_conflict_skill_ids=frozenset({40002}))
    with CxoneSimulator(CONFIG, behaviour) as sim:
        before = sim.finalized_attempts("4412")
        result = run_cli(["run", str(retire_policy(tmp_path, sim)), "--state",
                          str(tmp_path / "state")], cxone_env(sim))
        assert result.returncode == 1, result.stderr[-3000:]
        assert "skill 40002 refused to stop" in result.stderr
        skills = sim.skills()
        assert skills["40001"]["stops"] == 1
        assert skills["40001"]["isRunning"] and skills["40002"]["isRunning"], skills
        assert sim.ledger()["requested"] == {}, "nothing retired while a skill dials"
        assert sim.finalized_attempts("4412") == before
        with sqlite3.connect(tmp_path / "state" / "state.db") as db:
            assert db.execute("SELECT count(*) FROM pauses").fetchone() == (0,)


def test_a_removal_applied_but_answered_502_is_not_recorded_failed(tmp_path):
    """The first removeProspects is applied, then its answer is lost (502); the retry of
    the same call finds those prospects gone already. They left the calling list: their
    attempts are retired and archived, not recorded failed and never listed again."""
    with CxoneSimulator(CONFIG) as sim:
        before = sim.finalized_attempts("4412")
        sim.lose_removal_answers(1)
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids, action="retire",
                              source=RETIRE_SOURCE, max_in_flight=1)
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "state")],
                         cxone_env(sim))
        assert result.returncode == 0, result.stderr[-3000:]
        removals = [r for r in sim.requests() if r["kind"] == "remove"]
        assert [r["status"] for r in removals[:2]] == [502, 200], "the lost answer happened"
        check_each_archived_once(sim, tmp_path, before)


def test_a_removal_applied_then_refused_on_its_retry_is_checked_against_the_listing(tmp_path):
    """The first removeProspects is applied and its answer lost (502); its retry names
    only prospects gone already and the tenant answers 404. The refusal of the repeat
    does not say the first try did nothing: those prospects left the calling list with
    their attempts, which must be archived and recorded retired, not closed failed
    (they are never listed again)."""
    behaviour = Behaviour(invented_none_on_list_status=404)
    with CxoneSimulator(CONFIG, behaviour) as sim:
        before = sim.finalized_attempts("4412")
        sim.lose_removal_answers(1)
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids, action="retire",
                              source=RETIRE_SOURCE, max_in_flight=1)
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "state")],
                         cxone_env(sim))
        removals = [r for r in sim.requests() if r["kind"] == "remove"]
        assert [r["status"] for r in removals[:2]] == [502, 404], "the refused repeat happened"
        assert result.returncode == 0, result.stderr[-3000:]
        check_each_archived_once(sim, tmp_path, before)


def test_a_calling_list_that_answers_fewer_attempts_than_asked_is_read_to_its_end(tmp_path):
    """The calling list answers at most 40 attempts a page whatever `top` asks (100). A
    page shorter than asked for is not its end: one run lists, archives and retires
    every finalized attempt, not the first 40 (an export would list the same 40 run
    after run and never reach the rest)."""
    with CxoneSimulator(CONFIG, Behaviour(invented_list_max_top=40)) as sim:
        before = sim.finalized_attempts("4412")
        assert len(before) > 80
        source = {**RETIRE_SOURCE, "page_size": 100}
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids, action="retire", source=source)
        result = run_cli(["run", str(policy), "--state", str(tmp_path / "state")],
                         cxone_env(sim))
        assert result.returncode == 0, result.stderr[-3000:]
        check_retired_once(sim, tmp_path, before)


def test_a_removal_whose_answer_cannot_be_read_is_checked_against_the_listing(tmp_path):
    """removeProspects removes the prospects, then answers 200 with a body cut short. The
    answer is no proof that nothing was removed: the prospects that left the calling list
    are recorded retired and archived, not failed (they are never listed again)."""
    with CxoneSimulator(CONFIG, Behaviour(served_bodies={"remove": (200, b'{"successfulRecords": [{"exter')})) as sim:
        before = sim.finalized_attempts("4412")
        result = run_cli(["run", str(retire_policy(tmp_path, sim)), "--state",
                          str(tmp_path / "state")], cxone_env(sim))
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        assert sim.finalized_attempts("4412") == {}
        check_retired_once(sim, tmp_path, before)


def retire_and_check(tmp_path: Path, behaviour: Behaviour) -> dict[str, str]:
    """A retire run against a simulator that behaves so: it exits 0 and every prospect
    is retired once (check_retired_once). The attempts finalized before it, by id."""
    with CxoneSimulator(CONFIG, behaviour) as sim:
        before = sim.finalized_attempts("4412")
        result = run_cli(["run", str(retire_policy(tmp_path, sim)), "--state",
                          str(tmp_path / "state")], cxone_env(sim))
        assert result.returncode == 0, result.stderr[-3000:]
        check_retired_once(sim, tmp_path, before)
    return before


def test_prospects_a_removal_answer_leaves_out_are_checked_against_the_listing(tmp_path):
    """Every removal is applied, but its answer names one prospect only: the others are
    neither removed nor refused by what it says. They left the calling list, so they
    are retired and archived, not recorded failed (they are never listed again)."""
    first = {"successfulRecords": [{"externalId": "P4412-0000", "resultCode": "Removed"}]}
    behaviour = Behaviour(served_bodies={"remove": (200, json.dumps(first).encode())})
    retire_and_check(tmp_path, behaviour)


def test_a_prospect_a_removal_answer_names_both_removed_and_kept_is_checked_against_the_listing(
    tmp_path,
):
    """Every removal is applied, but its answer names one prospect in successfulRecords
    and in failedRecords. That proves neither: the prospect left the calling list, so
    its attempts are retired and archived, not recorded failed (never listed again)."""
    both = {"successfulRecords": [{"externalId": "P4412-0000", "resultCode": "Removed"}],
            "failedRecords": [{"externalId": "P4412-0000", "resultCode": "ProspectLocked"}]}
    behaviour = Behaviour(served_bodies={"remove": (200, json.dumps(both).encode())})
    before = retire_and_check(tmp_path, behaviour)
    assert "P4412-0000" in before.values()


def test_a_removal_answered_in_an_encoding_it_is_not_in_is_not_sent_again(tmp_path):
    """removeProspects removes the prospects, then answers 200 with a body that says it
    is gzip and is not. That was a "connection failed" tried again: each prospect was
    named in removal after removal. It is an answer that cannot be read: the prospects
    that left the calling list are retired and archived, each asked for once."""
    behaviour = Behaviour(served_bodies={"remove": (200, b"not gzip")},
                          served_headers={"remove": {"Content-Encoding": "gzip"}})
    retire_and_check(tmp_path, behaviour)


def test_sigterm_while_retiring_restarts_the_skills_it_stopped(tmp_path):
    """One SIGTERM stops the run within seconds: calls in flight are abandoned, but the
    skills it stopped are started again before it exits, not left for a later run."""
    config = CxoneSimConfig(campaigns=1, call_lists=1, prospects_per_list=240)
    source = {**RETIRE_SOURCE, "page_size": 100}
    with CxoneSimulator(config, Behaviour(latency_seconds=0.1)) as sim:
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids, action="retire",
                              source=source, max_in_flight=1)
        args = [sys.executable, "-m", "archiver", "run", str(policy), "--state",
                str(tmp_path / "state")]
        proc = subprocess.Popen(args, env=cxone_env(sim), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not sim.ledger()["removed"]:
            assert time.monotonic() < deadline and proc.poll() is None, "nothing was retired"
            time.sleep(0.02)
        assert not any(s["isRunning"] for s in sim.skills().values()), "paused while retiring"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 1, stderr[-3000:]
        assert sim.finalized_attempts("4412"), "stopped part-way"
        skills = sim.skills()
        assert all(s["isRunning"] and s["starts"] == 1 for s in skills.values()), (
            skills, stderr[-2000:])
        with sqlite3.connect(tmp_path / "state" / "state.db") as db:
            assert db.execute("SELECT count(*) FROM pauses").fetchone() == (0,)


def test_a_kill_after_a_partly_refused_removal_leaves_each_attempt_in_one_archive_file(
    tmp_path,
):
    """The killed run wrote the batch's file with every member; the prospect the list
    kept is retired by a later batch: its attempts must not stay in the first file too."""
    with CxoneSimulator(CONFIG) as sim:
        before = sim.finalized_attempts("4412")
        locked = sorted(set(before.values()))[0]  # in the first batch
        sim.set(remove_failures={locked: "ProspectLocked"})
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids, action="retire",
                              source=RETIRE_SOURCE, max_in_flight=1)
        args = ["run", str(policy), "--state", str(tmp_path / "state")]
        crashed = run_cli(args, {**cxone_env(sim), "ARCHIVER_FAILPOINT": "archive_written:1"})
        assert crashed.returncode == SIGKILL, crashed.stderr[-2000:]
        sim.set(remove_failures={})
        final = run_cli(args, cxone_env(sim))
        assert final.returncode == 0, final.stderr[-3000:]
        ledger = sim.ledger()
        assert ledger["requested"][locked] == 2, "refused once, removed by the rerun"
        assert set(ledger["removed"]) == set(before.values())
        assert set(ledger["removed"].values()) == {1}
        assert archived_in_store(tmp_path / "state") == set(before)
        files = archive_files(tmp_path / "archive")
        ids = [r["id"] for records in files.values() for r in records]
        assert sorted(ids) == sorted(before), "each retired attempt in exactly one file"


def test_a_reconciled_batch_rewrites_the_file_a_dead_run_wrote_with_every_member(tmp_path):
    """The killed run removed the whole first batch and wrote its file. Before the rerun
    one of its prospects is back on the list with its attempts: reconciling archives the
    rest, that prospect is retired by a later batch, and the first file must not keep
    its attempts as well."""
    with CxoneSimulator(CONFIG) as sim:
        before = sim.finalized_attempts("4412")
        back = sorted(set(before.values()))[0]  # in the first batch
        its = {a for a, p in before.items() if p == back}
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids, action="retire",
                              source=RETIRE_SOURCE, max_in_flight=1)
        args = ["run", str(policy), "--state", str(tmp_path / "state")]
        crashed = run_cli(args, {**cxone_env(sim), "ARCHIVER_FAILPOINT": "archive_written:1"})
        assert crashed.returncode == SIGKILL, crashed.stderr[-2000:]
        [(first_path, first)] = archive_files(tmp_path / "archive").items()
        assert its <= {r["id"] for r in first}, "the dead run's file holds its attempts"
        sim.restore_prospect("4412", back)
        final = run_cli(args, cxone_env(sim))
        assert final.returncode == 0, final.stderr[-3000:]
        assert sim.ledger()["removed"][back] == 2, "removed, put back, removed again"
        assert sim.finalized_attempts("4412") == {}
        files = archive_files(tmp_path / "archive")
        ids = [r["id"] for records in files.values() for r in records]
        assert sorted(ids) == sorted(before), "each retired attempt in exactly one file"
        assert [r["id"] for r in files[first_path] if r["id"] in its] == []


def test_an_open_batch_is_not_resent_when_a_new_attempt_of_its_prospect_is_held(tmp_path):
    """A run dies with a batch formed and not sent. Before the next run the batch's first
    prospect makes another call, and a hold is placed on that new attempt only. Resending
    the batch would remove the prospect and the held attempt with it: the batch is
    reconciled instead, and the prospect stays on the calling list, all of it held."""
    with CxoneSimulator(CONFIG) as sim:
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids, action="retire",
                              source=RETIRE_SOURCE, max_in_flight=1)
        policy.write_text(policy.read_text() + "holds: [holds/lit.yaml]\n")
        (tmp_path / "holds").mkdir()
        hold = tmp_path / "holds" / "lit.yaml"
        hold.write_text("case: LIT-10\nplaced_by: legal@example.com\n")
        args = ["run", str(policy), "--state", str(tmp_path / "state")]
        env = cxone_env(sim)
        crashed = run_cli(args, {**env, "ARCHIVER_FAILPOINT": "batch_prepared:1"})
        assert crashed.returncode == SIGKILL, crashed.stderr[-2000:]
        assert sim.ledger()["requested"] == {}, "the batch was formed, not sent"
        with sqlite3.connect(tmp_path / "state" / "state.db") as db:
            [(contact,)] = db.execute(
                "SELECT contact_id FROM attempts WHERE batch_id IS NOT NULL"
                " ORDER BY contact_id, attempt_id LIMIT 1").fetchall()
        new_attempt = sim.add_attempt("4412", contact)
        hold.write_text(f"case: LIT-10\nplaced_by: legal@example.com\n"
                        f"attempts: ['{new_attempt}']\n")
        final = run_cli(args, env)
        assert final.returncode == 0, final.stderr[-3000:]
        assert sim.ledger()["requested"].get(contact, 0) == 0, "the held prospect was kept"
        kept = {a for a, p in sim.finalized_attempts("4412").items() if p == contact}
        assert new_attempt in kept and len(kept) > 1
        with sqlite3.connect(tmp_path / "state" / "state.db") as db:
            states = dict(db.execute(
                "SELECT attempt_id, state FROM attempts WHERE contact_id = ?", (contact,)
            ).fetchall())
        assert states == {a: "held" for a in kept}
        assert set(sim.finalized_attempts("4412").values()) == {contact}, "the rest retired"


# How the first run's write of its first batch's file was cut, and what it left: the disk
# filled as the file was written (its temporary file), or the run was killed once the
# file was in place, before the batch was recorded (the file itself).
CUT_WRITES = {"a full disk": ("batch_posted:1:full", 74), "a kill": ("archive_written:1", SIGKILL)}
# How the tenant refuses the resent batch: it keeps every prospect (each one in
# failedRecords), refuses the call as a whole (403, nothing removed), or keeps one.
FORBIDDEN = json.dumps({"error": "Forbidden", "error_description": "role lacks removal"})
REFUSALS = {
    "every prospect kept": (all, None),
    "the call refused 403": (all, (403, FORBIDDEN.encode())),
    "one prospect kept": (lambda p: p[:1], None),
}


def check_archive_vouched(tmp_path: Path, env: dict[str, str]) -> dict[Path, list[str]]:
    """Nothing in the archive folder but files each vouched for by one audit line (its
    SHA-256, count and attempts), and the audit log agrees with the state store. The
    attempt ids of each file."""
    files = archive_files(tmp_path / "archive")
    others = [p for p in (tmp_path / "archive").rglob("*") if p.is_file() and p not in files]
    assert others == [], "no temporary file, nothing but the batches' files"
    vouched: dict[Path, list[str]] = {}
    for line in audit_lines(tmp_path / "audit" / "audit.jsonl"):
        for entry in line.get("files") or []:
            path = tmp_path / entry["path"]
            assert path not in vouched, "one audit line per file"
            ids = [r["id"] for r in files[path]]
            assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
            assert entry["records"] == len(ids) == line["result"]["archived_count"]
            assert set(ids) == set(line["attempt_ids"])
            vouched[path] = ids
    assert set(vouched) == set(files), "every file has its audit line"
    verify = run_cli(["audit", "verify", str(tmp_path / "audit" / "audit.jsonl"),
                      "--state", str(tmp_path / "state")], env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    return vouched


@pytest.mark.parametrize("refusal", list(REFUSALS))
@pytest.mark.parametrize("cut", list(CUT_WRITES))
def test_a_resent_batch_the_tenant_refuses_leaves_no_file_of_what_a_cut_write_held(
    tmp_path, cut, refusal
):
    """The first batch's prospects are removed, then the write of its file is cut: a
    temporary file (disk full) or an unrecorded file (killed) holds all its attempts,
    the batch stays open. Before the rerun its prospects are back on the calling list,
    so the rerun sends the batch again with its key, and the tenant refuses that: each
    prospect, the whole call (403), or one prospect. The attempts it kept are failed,
    not archived: no file of them may stay in the archive folder (under a temporary or
    the batch's own name) beside the files that audit lines vouch for. A last run with
    the refusals gone retires them, each attempt in exactly one file."""
    failpoint, exit_code = CUT_WRITES[cut]
    kept_of, served = REFUSALS[refusal]
    with CxoneSimulator(CONFIG) as sim:
        before = sim.finalized_attempts("4412")
        policy = cxone_policy(tmp_path, sim, sim.campaign_ids, action="retire",
                              source=RETIRE_SOURCE, max_in_flight=1)
        args = ["run", str(policy), "--state", str(tmp_path / "state")]
        env = cxone_env(sim)
        cut_short = run_cli(args, {**env, "ARCHIVER_FAILPOINT": failpoint})
        assert cut_short.returncode == exit_code, cut_short.stderr[-2000:]
        with sqlite3.connect(tmp_path / "state" / "state.db") as db:
            rows = db.execute("SELECT batches.id, attempt_id, contact_id FROM attempts JOIN"
                              " batches ON attempts.batch_id = batches.id"
                              " WHERE batches.status = 'prepared'").fetchall()
        [batch_id] = {r[0] for r in rows}
        members = {r[1] for r in rows}
        [left] = [p for p in (tmp_path / "archive").rglob("*") if p.is_file()]
        name = f"{batch_id}.jsonl.gz"
        assert left.name == (name if cut == "a kill" else f".{name}.tmp")
        prospects = sorted({r[2] for r in rows})
        for prospect in prospects:
            sim.restore_prospect("4412", prospect)
        kept = kept_of(prospects) if kept_of is not all else prospects
        sim.set(remove_failures={p: "ProspectLocked" for p in kept},
                served_bodies={"remove": served} if served else {})

        refused = run_cli(args, env)
        assert refused.returncode == 1, refused.stderr[-3000:]
        assert "resending open batch" in refused.stderr
        assert {p: sim.ledger()["requested"][p] for p in prospects} == dict.fromkeys(
            prospects, 2), "removed by the first run, asked again by the resend"
        on_list = set(sim.finalized_attempts("4412").values())
        assert set(kept) <= on_list, "the refused prospects are on the calling list"
        with sqlite3.connect(tmp_path / "state" / "state.db") as db:
            states = dict(db.execute("SELECT attempt_id, state FROM attempts").fetchall())
        failed = {a for a in members if before[a] in kept}
        assert failed and {a for a, s in states.items() if s == "failed"} >= failed
        vouched = check_archive_vouched(tmp_path, env)
        in_files = {a for ids in vouched.values() for a in ids}
        assert not failed & in_files, "no attempt the tenant kept is in a file"
        assert members - failed <= in_files, "the resend's archived attempts are in one"

        sim.set(remove_failures={}, served_bodies={})
        final = run_cli(args, env)
        assert final.returncode == 0, final.stderr[-3000:]
        check_each_archived_once(sim, tmp_path, before)
        check_archive_vouched(tmp_path, env)

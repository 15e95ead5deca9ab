"""A plugin that raises SystemExit, KeyboardInterrupt or a BaseException of its own is
reported by name like one that raises any other error, in runs of the real command: it
is not the run asked to exit or interrupted. A filter or transform fails its campaign; a
sink that fails to deliver keeps its events for a later run, which delivers them in
order. So is a sink whose `deliver` answers with something that is not a receipt. Before
any run, a plugin module that exits as it is imported is a type that failed to load, and
a factory or check that exits is reported as one that raises."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from archiver.simulator import Simulator
from tests.plugins import misbehaving
from tests.plugins.misbehaving import SINK
from tests.plugins.test_plugin_results import (
    CAMPAIGN,
    check_ground_truth,
    plugin_env,
    policy,
    run_failing,
    run_statuses,
    stage,
)
from tests.support import APPROVED, REPO, run_cli


@pytest.mark.parametrize(("kind", "mode", "said"), [
    ("filter", "system_exit", "SystemExit: 0"),
    ("transform", "keyboard_interrupt", "KeyboardInterrupt"),
    ("filter", "base_exception", "Cancelled: gave up"),
    ("filter", "auth_error", "AuthError: HTTP 401 client credentials refused"),
    ("transform", "state_error", "StateError: the state store is damaged"),
    ("filter", "delivery_failed", "StageDeliveryFailed: try again later"),
])
def test_a_stage_raising_a_base_exception_fails_its_campaign_by_name(
    tmp_path: Path, start_sim: Any, kind: str, mode: str, said: str
) -> None:
    """Before: SystemExit(0) ended the run with exit 0 and no word, the run left `running`
    and 254 of 600 attempts pending; KeyboardInterrupt said `interrupted` (exit 130) with
    no signal sent; a BaseException of the plugin's own was a traceback. One of archiver's
    own errors passed through as archiver's: AuthError ended the run with exit 78 and
    "client credentials refused" with no plugin named, StateError as a broken store."""
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=600, seed=7)
    stages = {f"{kind}s": (stage(kind, mode, 300),)}
    reason, report = run_failing(sim, tmp_path, policy(tmp_path, **stages))
    assert reason.startswith(f"{kind} plugin 'misbehaving_{kind}' failed on attempt att-"), reason
    assert reason.endswith(said), reason
    assert sim.ledger() == {}
    check_ground_truth(sim, tmp_path, report)


def _sink_policy(tmp_path: Path, mode: str) -> Path:
    """The suite's policy with the sink, failing on every delivery but its first, until
    the file `fixed` exists."""
    path = policy(tmp_path)
    sink = {"type": SINK, "options": {"mode": mode, "after": 1,
                                      "fixed": str(tmp_path / "fixed"),
                                      "log": str(tmp_path / "delivered.log")}}
    path.write_text(path.read_text() + "- " + json.dumps(sink) + "\n")
    return path


def _outbox(state: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(state / "state.db") as db:
        return db.execute("SELECT event_id, status FROM outbox WHERE sink LIKE ?"
                          " ORDER BY seq", (f"{SINK}:%",)).fetchall()


@pytest.mark.parametrize(("mode", "said"), [
    ("system_exit", "SystemExit: 0"),
    ("keyboard_interrupt", "KeyboardInterrupt"),
    ("dict_receipt", "returned a dict, not a receipt (text) or None"),
    ("auth_error", "AuthError: HTTP 401 client credentials refused"),
    ("state_error", "StateError: the state store is damaged"),
])
def test_a_sink_that_fails_to_deliver_so_keeps_its_events_and_the_next_run_delivers_them(
    tmp_path: Path, start_sim: Any, mode: str, said: str
) -> None:
    """Before: SystemExit on delivering ended every run with exit 0 before listing (all
    600 attempts without a state, the run left `interrupted`); KeyboardInterrupt, exit 130
    likewise; a dict receipt was an error of the state store (`Error binding parameter`),
    again on every run; an AuthError or StateError raised in `deliver` was reported as
    archiver's own, without the plugin's name."""
    sim: Simulator = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=600, seed=7)
    env, state = plugin_env(sim, tmp_path), tmp_path / "state"
    path, report_file = _sink_policy(tmp_path, mode), tmp_path / "report.json"
    ran = run_cli(["run", str(path), "--state", str(state), "--report", str(report_file)], env)
    out = ran.stdout + ran.stderr
    assert "Traceback" not in out, out[-3000:]
    assert f"sink plugin '{SINK}' failed to deliver evt-" in out and said in out, out[-3000:]
    report = json.loads(report_file.read_text())
    # The archive went on, recorded: every eligible attempt archived, once.
    assert set(sim.ledger()) == sim.eligible_ids(CAMPAIGN, set(APPROVED))
    assert set(sim.ledger().values()) == {1}
    assert report["totals"]["archived"] == len(sim.ledger())
    events = _outbox(state)
    kept = [e for e, _ in events]
    # The first event went; the second failed (tried a few times) and is kept, and so is
    # every one after it: nothing past it was tried.
    assert [s for _, s in events] == ["delivered"] + ["pending"] * (len(kept) - 1)
    [key] = [k for k in report["outbox"] if k.startswith(f"{SINK}:")]
    assert report["outbox"][key]["pending"] == len(kept) - 1
    tried = (tmp_path / "delivered.log").read_text().split()
    assert tried[0] == kept[0] and set(tried[1:]) == {kept[1]}

    (tmp_path / "fixed").touch()
    again = run_cli(["run", str(path), "--state", str(state)], env)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    # At least once, in order: the one that failed is delivered again, then the rest, then
    # this run's own events.
    delivered = (tmp_path / "delivered.log").read_text().split()[len(tried):]
    assert delivered[:len(kept) - 1] == kept[1:]
    assert [e for e, _ in _outbox(state)] == kept + delivered[len(kept) - 1:]
    assert {s for _, s in _outbox(state)} == {"delivered"}


def test_a_plugin_module_that_exits_as_it_is_imported_is_reported_and_the_others_load(
    tmp_path: Path,
) -> None:
    """Before: installing it made `validate` exit 0 without validating anything."""
    site = misbehaving.install(tmp_path / "site", exits_on_import=True)
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    checked = run_cli(["validate", str(policy(tmp_path, filters=(stage("filter", "text"),)))], env)
    out = checked.stdout + checked.stderr
    assert checked.returncode == 0, out
    assert "1 policy valid" in out
    assert "stage plugin 'exits_on_import' (exits_on_import:STAGE) failed to load: SystemExit: 0" in out


def test_a_factory_or_check_raising_system_exit_is_reported_by_name(
    tmp_path: Path, start_sim: Any
) -> None:
    """Before: `run` exited 0 having done nothing, and `validate` exited 0 unchecked."""
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=100, seed=7)
    env = plugin_env(sim, tmp_path)
    built = run_cli(["run", str(policy(tmp_path, filters=(stage("filter", "build_system_exit"),))),
                     "--state", str(tmp_path / "state")], env)
    assert built.returncode == 78, built.stdout + built.stderr
    assert "filter plugin 'misbehaving_filter' failed to build: SystemExit: 0" in built.stderr
    assert sim.ledger() == {} and not (tmp_path / "audit.jsonl").exists()
    checked = run_cli(["validate", str(policy(tmp_path, filters=(stage("filter", "check_system_exit"),)))],
                      env)
    assert checked.returncode == 78, checked.stdout + checked.stderr
    assert "V024 the `misbehaving_filter` filter's own check failed: SystemExit: 0" in (
        checked.stdout + checked.stderr)


def test_a_sink_whose_deliver_many_answers_too_few_receipts_keeps_its_events(
    tmp_path: Path, start_sim: Any
) -> None:
    """Before: a traceback (`zip() argument 2 is shorter than argument 1`) from the
    outbox, the run left `running`."""
    sim: Simulator = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=600, seed=7)
    env, state = plugin_env(sim, tmp_path), tmp_path / "state"
    path = _sink_policy(tmp_path, "many_short")
    ran = run_cli(["run", str(path), "--state", str(state)], env)
    out = ran.stdout + ran.stderr
    assert ran.returncode == 0 and "Traceback" not in out, out[-3000:]
    assert (f"sink plugin '{SINK}' failed in deliver_many: it returned a list, not a receipt "
            "(text) or None for each of the") in out, out[-3000:]
    assert set(sim.ledger()) == sim.eligible_ids(CAMPAIGN, set(APPROVED))
    events = _outbox(state)
    assert [s for _, s in events] == ["delivered"] + ["pending"] * (len(events) - 1)
    assert run_statuses(state) == ["completed"]

    (tmp_path / "fixed").touch()
    again = run_cli(["run", str(path), "--state", str(state)], env)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert {s for _, s in _outbox(state)} == {"delivered"}
    assert [e for e, _ in _outbox(state)][:len(events)] == [e for e, _ in events]


"""``archiver runs``: past runs from the state store, and ``runs show`` for one report."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from click.testing import CliRunner, Result

from archiver.cli import cli
from archiver.state.store import Store
from archiver.target import Target
from tests.report.test_monitor import base_report

TARGET = Target("campaign-archive", "api-us-02.nicecxone.com")


def finished_run(store: Store, run_id: str) -> None:
    """A completed run of policy `nightly` with a report (one campaign, 10 listed)."""
    store.runs.start(run_id, "nightly", "0" * 64)
    report = base_report([("c-1", 7, 2, 1, 0)])
    report["run_id"] = run_id
    store.runs.finish(run_id, "completed", 0, report)


@pytest.fixture
def state(tmp_path):
    folder = tmp_path / ".archiver"
    store = Store(folder)
    try:
        # The first run from before runs recorded their target: it has none.
        finished_run(store, "r20250101T000000-aaaaaa")
        time.sleep(0.005)  # start times have millisecond resolution
        # A second run that died: the next start marks it interrupted; no report.
        store.runs.start("r20250102T000000-bbbbbb", "nightly", "0" * 64, TARGET)
        time.sleep(0.005)
        store.runs.start("r20250103T000000-cccccc", "[weekly]", "0" * 64, TARGET)
        failed = base_report([("c-1", 3, 0, 0, 2)])
        store.runs.finish("r20250103T000000-cccccc", "failed", 1, failed)
    finally:
        store.close()
    return folder


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_runs_json_lists_newest_first_with_outcome_and_counts(state):
    result = invoke("runs", "--state", str(state), "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["id"], r["status"], r["exit_code"]) for r in rows] == [
        ("r20250103T000000-cccccc", "failed", 1),
        ("r20250102T000000-bbbbbb", "interrupted", None),
        ("r20250101T000000-aaaaaa", "completed", 0),
    ]
    assert (rows[0]["listed"], rows[0]["archived"], rows[0]["failed"]) == (5, 3, 2)
    assert rows[1]["listed"] is None
    assert rows[2]["listed"] == rows[2]["archived"] + rows[2]["skipped"] + rows[2]["quarantined"]


def test_runs_name_the_target_of_every_run_that_recorded_one(state):
    rows = json.loads(invoke("runs", "--state", str(state), "--format", "json").output)
    assert [r["target"] for r in rows] == [TARGET.as_dict(), TARGET.as_dict(), None]
    table = invoke("runs", "--state", str(state)).output
    assert "target" in table.split()
    assert table.count("api-us-02.nicecxone.com") == 2


def test_runs_table_shows_every_run(state):
    result = invoke("runs", "--state", str(state))
    assert result.exit_code == 0, result.output
    for text in ("r20250101T000000-aaaaaa", "r20250102T000000-bbbbbb", "[weekly]", "interrupted", "completed"):
        assert text in result.output
    assert "\x1b" not in result.output


def test_runs_finds_the_state_beside_a_policy(state):
    policy = state.parent / "nightly.yaml"
    policy.write_text("# the policy; only where it is matters here\n")
    result = invoke("runs", "--policy", str(policy), "--format", "json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) == 3


def test_a_policy_that_does_not_exist_is_named_as_such(tmp_path):
    # Not "no state store in /.archiver": the policy is what is missing.
    result = invoke("runs", "--policy", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert f"'--policy': File '{tmp_path / 'nope.yaml'}' does not exist" in result.output


def test_runs_default_state_is_the_current_folder(state, monkeypatch):
    monkeypatch.chdir(state.parent)
    result = invoke("runs", "--format", "json", "--limit", "1")
    assert [r["id"] for r in json.loads(result.output)] == ["r20250103T000000-cccccc"]


def test_show_prints_a_report_by_id_prefix(state):
    for args in (
        ("runs", "--state", str(state), "show", "r20250101"),
        ("runs", "show", "r20250101T000000-aaaaaa", "--state", str(state)),
    ):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["run_id"] == "r20250101T000000-aaaaaa"
        assert report["totals"]["listed"] == 10


@pytest.mark.parametrize(
    ("prefix", "message", "code"),
    [
        ("r2025", "ambiguous", 2),
        ("zzz", "no run with id", 2),
        ("r20250102", "has no report", 1),
    ],
)
def test_show_refuses_unknown_ambiguous_and_reportless_runs(state, prefix, message, code):
    result = invoke("runs", "--state", str(state), "show", prefix)
    assert result.exit_code == code
    assert message in result.output


def test_a_missing_state_store_is_an_error_not_an_empty_list(tmp_path):
    result = invoke("runs", "--state", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert "no state store" in result.output
    assert not (tmp_path / "nope").exists()


def test_report_path_gets_the_policy_name_only_when_several_policies_run():
    from pathlib import Path

    from archiver.commands.run import report_path_for

    assert report_path_for(Path("out/r.json"), "nightly", several=False) == Path("out/r.json")
    assert report_path_for(Path("out/r.json"), "nightly", several=True) == Path("out/r.nightly.json")


def _set_report(folder, run_id, value):
    db = sqlite3.connect(folder / "state.db")
    with db:
        db.execute("UPDATE runs SET report = ? WHERE id = ?", (value, run_id))
    db.close()


@pytest.mark.parametrize(
    ("stored", "defect"),
    [
        ("{not json", "is not JSON"),
        (b"\x00\xff", "is not JSON"),
        ("[1, 2]", "is not a run report"),
        ('"text"', "is not a run report"),
        ('{"totals": 5}', "is not a run report"),
        ('{"policy": [], "totals": {}}', "is not a run report"),
        ('{"campaigns": {}}', "is not a run report"),
    ],
)
@pytest.mark.parametrize(
    "args",
    [
        ("runs",),
        ("runs", "--format", "json"),
        ("runs", "show", "r20250101T000000-aaaaaa"),
        ("evidence", "r20250101T000000-aaaaaa", "--out", "bundle.json"),
    ],
    ids=["runs", "runs-json", "show", "evidence"],
)
def test_a_damaged_report_is_one_line_naming_the_store_and_the_run(state, stored, defect, args):
    _set_report(state, "r20250101T000000-aaaaaa", stored)
    result = invoke(*args, "--state", str(state))
    assert result.exit_code == 1
    assert result.output.startswith(
        f"archiver: error: the state store {state} is damaged: the report of run "
        f"r20250101T000000-aaaaaa {defect}"
    )
    assert "restore it from a backup" in result.output
    assert len(result.output.splitlines()) == 1


def test_a_report_without_its_run_id_or_policy_hash_is_not_bundled(state, tmp_path):
    _set_report(state, "r20250101T000000-aaaaaa", '{"totals": {}}')
    result = invoke("evidence", "r20250101T000000-aaaaaa", "--out", str(tmp_path / "b.json"),
                    "--state", str(state))
    assert result.exit_code == 1
    assert (f"the report of run r20250101T000000-aaaaaa in the state store {state} names no run"
            " id or policy SHA-256") in result.output
    assert not (tmp_path / "b.json").exists()


def test_run_times_that_are_not_times_show_no_duration(state):
    db = sqlite3.connect(state / "state.db")
    with db:
        db.execute("UPDATE runs SET started_at = 'yesterday', finished_at = 17")
    db.close()
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        cli, ["runs", "--state", str(state)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "r20250101T000000-aaaaaa" in result.output


@pytest.mark.parametrize("stored", [None, "", b"r1"])
def test_a_run_without_an_id_is_named_as_damage(state, stored):
    db = sqlite3.connect(state / "state.db")
    with db:
        db.execute("UPDATE runs SET id = ? WHERE id = 'r20250101T000000-aaaaaa'", (stored,))
    db.close()
    for args in (("runs",), ("runs", "--format", "json")):
        result = invoke(*args, "--state", str(state))
        assert result.exit_code == 1
        assert result.output.startswith(
            f"archiver: error: the state store {state} is damaged: a run started at "
        )
        assert f"has no id (runs.id {stored!r}); restore it from a backup" in result.output


@pytest.mark.parametrize(("column", "stored", "kind"), [
    ("policy_name", b"\xff", "text"), ("started_at", b"2025", "text"),
    ("finished_at", b"\x00", "text"), ("status", None, "text"), ("exit_code", "x", "a number"),
])
def test_a_run_column_of_another_type_is_named_as_damage(state, column, stored, kind):
    db = sqlite3.connect(state / "state.db")
    with db:
        # NOT NULL columns take a NULL only through a rebuilt table: a blob stands in.
        value = b"" if stored is None else stored
        db.execute(f"UPDATE runs SET {column} = ? WHERE id = 'r20250101T000000-aaaaaa'", (value,))
    db.close()
    for args in (("runs",), ("runs", "--format", "json"), ("runs", "show", "r20250101")):
        result = invoke(*args, "--state", str(state))
        assert result.exit_code == 1, result.output
        assert result.output == (
            f"archiver: error: the state store {state} is damaged: run r20250101T000000-aaaaaa"
            f" has runs.{column} {value!r}, not {kind}; restore it from a backup or move it"
            " aside\n"
        )


@pytest.mark.parametrize("command", [("runs", "show"), ("evidence",)])
def test_an_empty_run_id_is_a_usage_error_not_the_only_run(tmp_path, command):
    # The empty string is a prefix of every id: with one run recorded, `runs show ""` and
    # `evidence "" --out F` (an unset variable) showed or bundled that run.
    folder = tmp_path / ".archiver"
    store = Store(folder)
    try:
        finished_run(store, "r20250101T000000-aaaaaa")
    finally:
        store.close()
    out = ["--out", str(tmp_path / "bundle.json")] if command == ("evidence",) else []
    result = invoke(*command, "", *out, "--state", str(folder))
    assert result.exit_code == 2, result.output
    assert "is empty: give a run id" in result.output
    assert not (tmp_path / "bundle.json").exists()


def test_a_limit_past_what_sql_integers_hold_lists_every_run(state):
    # It was an OverflowError traceback from the query.
    result = invoke("runs", "--state", str(state), "--format", "json",
                    "--limit", "99999999999999999999999")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) == 3


def test_a_run_that_reconciled_shows_it_apart_from_its_counts(tmp_path):
    folder = tmp_path / ".archiver"
    store = Store(folder)
    try:
        finished_run(store, "r20250101T000000-aaaaaa")  # a report from before the figure
        store.runs.start("r20250102T000000-bbbbbb", "nightly", "0" * 64)
        report = base_report([("c-1", 7, 2, 1, 0)])
        report["totals"]["reconciled"] = report["campaigns"][0]["reconciled"] = 40
        store.runs.finish("r20250102T000000-bbbbbb", "completed", 0, report)
    finally:
        store.close()
    rows = json.loads(invoke("runs", "--state", str(folder), "--format", "json").output)
    assert [(r["listed"], r["archived"], r["reconciled"]) for r in rows] == [
        (10, 7, 40), (10, 7, None)]
    for width in ("160", "80"):
        table = CliRunner(env={"COLUMNS": width}).invoke(
            cli, ["runs", "--state", str(folder)], catch_exceptions=False).output
        header = next(line for line in table.splitlines() if "listed" in line)
        assert header.split()[-1] == "reconciled", table
        assert "40" in table.split("r20250102T000000-bbbbbb")[1].splitlines()[0]


def test_no_reconciled_column_when_no_run_reconciled(state):
    assert "reconciled" not in invoke("runs", "--state", str(state)).output

"""A third-party stage that misbehaves is reported by name, as archiver's own errors
are: a broken type at load, a failing check at validation, a factory that fails before
any request, and an exception while running without a traceback."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import BaseModel, ConfigDict

from archiver.cli import cli
from archiver.engine.records import Decision
from archiver.stages import registry
from archiver.stages.descriptor import StageType
from tests.plugins import misbehaving
from tests.stage_types import install
from tests.support import REPO, policy_dict, run_cli, sim_env, write_policy

CAMPAIGN = "3f6c2a10-8d4e-4b7a-9c21-5e0f1a2b3c4d"
OTHER = "7b1e9d42-5a3c-4f60-8e17-2c9d0b4a6f81"


class Empty(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Raising:
    """A filter that raises on the tenth attempt it sees."""

    name = "raising"

    def __init__(self) -> None:
        self.seen = 0

    def check(self, attempt: Any) -> Decision | None:
        self.seen += 1
        if self.seen == 10:
            raise KeyError("no such column")
        return None


class Dropping:
    """A sink whose delivery always fails with an error of its own."""

    name = "dropping"
    events = frozenset({"batch_archived"})
    identity = "dropping:test"

    def render(self, event: Mapping[str, Any]) -> str:
        return json.dumps({"id": event["event_id"]})

    def deliver(self, event_id: str, body: str) -> None:
        raise OSError("disk full")


def _factory(make: Callable[[], object]) -> Callable[[Any, Any], object]:
    return lambda options, ctx: make()


def _fail(options: Any, ctx: Any) -> object:
    raise FileNotFoundError("dnc.csv")


def _check_fails(options: Any, ctx: Any) -> Any:
    raise RuntimeError("check exploded")


BUILT: list[str] = []  # the campaign of every "counting" filter built


class Counting:
    name = "counting"

    def check(self, attempt: Any) -> Decision | None:
        return None


def _counting(options: Any, ctx: Any) -> Counting:
    BUILT.append(ctx.campaign_id)
    return Counting()


def _raising_in_one(options: Any, ctx: Any) -> object:
    return Raising() if ctx.campaign_id == CAMPAIGN else Counting()


TYPES = {
    "raising_in_one": StageType(kind="filter", name="raising_in_one", options=Empty,
                                factory=_raising_in_one),
    "counting": StageType(kind="filter", name="counting", options=Empty, factory=_counting),
    "raising": StageType(kind="filter", name="raising", options=Empty, factory=_factory(Raising)),
    "unbuildable": StageType(kind="filter", name="unbuildable", options=Empty, factory=_fail),
    "dropping": StageType(kind="sink", name="dropping", options=Empty, factory=_factory(Dropping)),
    "badcheck": StageType(kind="filter", name="badcheck", options=Empty,
                          factory=_factory(Raising), check=_check_fails),
}


def _policy(
    tmp_path: Path, filters: str = "", sinks: str = "", campaigns: tuple[str, ...] = (CAMPAIGN,)
) -> Path:
    path = tmp_path / "policy.yaml"
    listed = "".join(f"  - id: {c}\n" for c in campaigns)
    path.write_text(f"""\
version: 1
name: plugin-failures
connection:
  base_url: embedded
  max_requests_per_second: 500
campaigns:
{listed}filters:
  - type: outcome
    approved: [SURVEY_TAKEN, NO_ANSWER]
  - type: anonymized
{filters}sinks:
  - type: audit_log
    path: audit.jsonl
{sinks}""")
    return path


def _cli(*args: str) -> Any:
    # catch_exceptions=False: an exception escaping the command fails the test outright.
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(autouse=True)
def _installed(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, *TYPES.values())


def test_a_filter_that_raises_stops_its_campaign_with_its_name(tmp_path: Path) -> None:
    policy = _policy(tmp_path, filters="  - type: raising\n")
    result = _cli("run", str(policy), "--state", str(tmp_path / "state"))
    assert result.exit_code == 1, result.output
    assert "filter plugin 'raising' failed on attempt" in result.output
    assert "KeyError" in result.output and "Traceback" not in result.output


def test_a_filter_that_raises_fails_only_its_campaign_and_the_run_ends_recorded(
    tmp_path: Path,
) -> None:
    """Before, the error escaped the campaign: the whole run stopped with no report, the
    other campaign undone, and the run left `running` in the store with no run_finished."""
    policy = _policy(tmp_path, filters="  - type: raising_in_one\n", campaigns=(CAMPAIGN, OTHER))
    state, report_file = tmp_path / "state", tmp_path / "r.json"
    result = _cli("run", str(policy), "--state", str(state), "--report", str(report_file))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    report = json.loads(report_file.read_text())
    by_id = {c["id"]: c for c in report["campaigns"]}
    assert by_id[CAMPAIGN]["status"] == "failed"
    assert "filter plugin 'raising_in_one' failed on attempt" in by_id[CAMPAIGN]["reason"]
    assert by_id[OTHER]["status"] == "done" and by_id[OTHER]["archived"] > 0
    events = [json.loads(line)["event"] for line in (tmp_path / "audit.jsonl").open()]
    assert events[0] == "run_started" and events[-1] == "run_finished"
    runs = _cli("runs", "--state", str(state), "--format", "json")
    assert [r["status"] for r in json.loads(runs.output)] != ["running"]


def test_a_filter_that_cannot_be_built_stops_the_run_before_any_request(tmp_path: Path) -> None:
    policy = _policy(tmp_path, filters="  - type: unbuildable\n")
    result = _cli("run", str(policy), "--state", str(tmp_path / "state"))
    assert result.exit_code == 78, result.output
    assert "filter plugin 'unbuildable' failed to build" in result.output
    assert not (tmp_path / "audit.jsonl").exists()  # not even run_started went out


def test_a_sink_that_raises_keeps_its_events_for_a_later_run(tmp_path: Path) -> None:
    policy = _policy(tmp_path, sinks="  - type: dropping\n")
    state = tmp_path / "state"
    result = _cli("run", str(policy), "--state", str(state), "--report", str(tmp_path / "r.json"))
    assert "Traceback" not in result.output
    assert "sink plugin 'dropping' failed to deliver" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    kept = report["outbox"]["dropping:test"]
    assert kept["delivered"] == 0 and kept["pending"] + kept.get("failed", 0) > 0, kept
    assert report["totals"]["archived"] > 0  # the archive itself went on


def test_a_plugins_failing_check_is_a_diagnostic_not_a_traceback(tmp_path: Path) -> None:
    policy = _policy(tmp_path, filters="  - type: badcheck\n")
    result = _cli("validate", str(policy))
    assert result.exit_code == 78
    assert "V024 the `badcheck` filter's own check failed: RuntimeError: check exploded" in (
        result.output)


def test_a_misspelt_plugin_type_gets_the_nearest_installed_one(tmp_path: Path) -> None:
    policy = _policy(tmp_path, filters="  - type: raisng\n")
    result = _cli("validate", str(policy))
    assert "unknown filter type `raisng`; did you mean `raising`?" in result.output


def test_a_type_whose_options_have_no_schema_is_refused_at_load() -> None:
    class Odd(BaseModel):
        hook: Callable[[int], int] | None = None

    odd = StageType(kind="filter", name="odd", options=Odd, factory=_factory(Raising))
    assert "no JSON Schema" in (odd.problem() or "")
    nohook = StageType(kind="filter", name="nohook", options=Empty, factory=_factory(Raising),
                       check=5)  # type: ignore[arg-type]
    assert nohook.problem() == "`check` must be a function of the options"
    listed = StageType(kind="filter", name="listed", options=Empty, factory=_factory(Raising),
                       reads=frozenset({"duration"}))  # type: ignore[arg-type]
    assert listed.problem() is None and listed.reads(Empty()) == {"duration"}
    assert registry.descriptor("filter", "raising") is TYPES["raising"]


def test_options_written_beside_an_installed_plugins_type_are_pointed_under_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Named close to the built-in `retention`: still the installed plugin, not a typo.
    install(monkeypatch, StageType(kind="transform", name="retentions", options=Empty,
                                   factory=_factory(Raising)))
    policy = _policy(tmp_path).read_text().replace(
        "sinks:", "transforms:\n  - type: retentions\n    days: 30\nsinks:")
    (tmp_path / "inline.yaml").write_text(policy)
    result = _cli("validate", str(tmp_path / "inline.yaml"))
    assert "unknown key `days`; a plugin stage takes its settings under `options`" in (
        result.output), result.output
    assert "did you mean" not in result.output


def test_each_campaign_builds_its_filters_once_per_run(tmp_path: Path) -> None:
    # A plugin's factory may read a large file: a run builds each campaign's stages once,
    # before its first request, and the campaign uses those.
    other = "4a7d3b21-9e5f-4c8b-8d32-6f1a2b3c4d5e"
    policy = _policy(tmp_path, filters="  - type: counting\n")
    policy.write_text(policy.read_text().replace(
        f"  - id: {CAMPAIGN}\n", f"  - id: {CAMPAIGN}\n  - id: {other}\n"))
    BUILT.clear()
    result = _cli("run", str(policy), "--state", str(tmp_path / "state"))
    assert result.exit_code == 0, result.output
    assert sorted(BUILT) == sorted([CAMPAIGN, other])


@pytest.mark.parametrize(("kind", "mode", "said"), [
    ("sink", "build_events_none", "its `events` is None, not a set of event kinds"),
    ("filter", "build_method_none", "its `check` is None, not a method"),
])
def test_a_stage_built_with_a_member_of_the_wrong_kind_stops_the_run_before_any_request(
    tmp_path: Path, start_sim: Any, kind: str, mode: str, said: str
) -> None:
    """Before: a sink whose `events` was None got as far as the run's first event, a
    traceback that left the run `running`; a filter whose `check` was None was said to
    lack nothing ("it lacks " and no name)."""
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=100, seed=7)
    site = misbehaving.install(tmp_path / "site")
    doc = policy_dict([CAMPAIGN])
    doc[f"{kind}s"] = [*doc[f"{kind}s"],
                       {"type": f"misbehaving_{kind}", "options": {"mode": mode}}]
    path = write_policy(tmp_path / "policy.yaml", doc)
    ran = run_cli(["run", str(path), "--state", str(tmp_path / "state")],
                  sim_env(sim, PYTHONPATH=os.pathsep.join([str(site), str(REPO)])))
    assert ran.returncode == 78, ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr
    assert f"{kind} type 'misbehaving_{kind}' built a " in ran.stderr and said in ran.stderr, (
        ran.stderr)
    assert [r for r in sim.requests() if r["kind"] != "token"] == []

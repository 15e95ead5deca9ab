"""Every stage type comes through the `archiver.stages` entry-point group, one by one:
archiver's own and a real installed distribution's alike."""

from __future__ import annotations

import sys

import pytest

from archiver.backends.campaign_archive import parse_record
from archiver.engine.pipeline import Pipeline
from archiver.errors import PluginError
from archiver.policy.model import Campaign, Connection, Policy
from archiver.stages import registry

DIST = "archiver_test_plugins-1.0.dist-info"

GOOD = '''
from pydantic import BaseModel, ConfigDict

from archiver.engine.records import Decision
from archiver.stages.descriptor import StageType


class ShortCallsOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    min_seconds: int = 5


class _ShortCalls:
    name = "short_calls"

    def __init__(self, min_seconds, campaign_id):
        self.min_seconds = min_seconds
        self.campaign_id = campaign_id

    def check(self, attempt):
        if attempt.duration < self.min_seconds:
            return Decision(attempt.id, "skip", f"call too short in {self.campaign_id}",
                            attempt=attempt)
        return None


def _build(options, ctx):
    ctx.log.info("built for %s", ctx.campaign_id)
    return _ShortCalls(options.min_seconds, ctx.campaign_id)


STAGE = StageType(kind="filter", name="short_calls", options=ShortCallsOptions,
                  factory=_build, reads=lambda options: frozenset({"duration"}))
NOT_A_FILTER = StageType(kind="filter", name="not_a_filter", options=ShortCallsOptions,
                         factory=lambda options, ctx: object())
IMPOSTOR = StageType(kind="filter", name="outcome", options=ShortCallsOptions,
                     factory=_build)
'''


@pytest.fixture
def plugin_dist(tmp_path, monkeypatch):
    """A real installed distribution on sys.path declaring stage types, some broken."""
    (tmp_path / "good_plugin.py").write_text(GOOD)
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('boom at import')\n")
    dist = tmp_path / DIST
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: archiver-test-plugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[archiver.stages]\n"
        "short_calls = good_plugin:STAGE\n"
        "not_a_filter = good_plugin:NOT_A_FILTER\n"
        "impostor = good_plugin:IMPOSTOR\n"
        "exploding = broken_plugin:STAGE\n"
        "not_a_stage = textwrap:dedent\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reload()
    yield
    registry.reload()
    for mod in ("good_plugin", "broken_plugin"):
        sys.modules.pop(mod, None)


def _policy(*filters: dict) -> Policy:
    return Policy(name="p", connection=Connection(base_url="embedded"),
                  campaigns=(Campaign(id="c"),), filters=filters)


def test_archivers_own_stage_types_come_through_the_entry_point_group() -> None:
    loaded = registry.registry()
    assert {k: set(v) for k, v in loaded.builtin.items()} == {
        "filter": {"outcome", "anonymized"},
        "transform": {"retention"},
        "sink": {"webhook", "audit_log", "file"},
    }
    for kind, names in loaded.builtin.items():
        for name in names:
            assert loaded.types[kind][name].kind == kind


def test_broken_plugins_are_reported_by_name_and_others_still_load(plugin_dist):
    loaded = registry.registry()
    assert "short_calls" in loaded.types["filter"]
    assert "boom at import" in loaded.errors["exploding"]
    assert "not a stage type" in loaded.errors["not_a_stage"]
    assert "short_calls" in registry.known_types("filter")
    assert "exploding" not in registry.known_types("filter")


def test_a_plugin_cannot_take_a_built_in_name(plugin_dist):
    assert "built in" in registry.registry().errors["impostor"]
    assert registry.descriptor("filter", "outcome").options.__name__ == "OutcomeFilter"


def test_plugin_filter_runs_in_the_pipeline_with_its_typed_options(plugin_dist):
    policy = _policy({"type": "short_calls", "options": {"min_seconds": 10}})
    assert type(policy.filters[0].options).__name__ == "ShortCallsOptions"
    ctx = registry.BuildContext(policy=policy, campaign_id="c")
    pipeline = Pipeline(*registry.build_pipeline_stages(ctx))
    base = {"id": "a", "contactId": "k", "outcomeCode": "X", "disposition": "D", "anonymized": True}
    assert pipeline.decide(parse_record({**base, "duration": 3})).reason == "call too short in c"
    assert pipeline.decide(parse_record({**base, "duration": 30})).kind == "archive"
    assert registry.fields_read(policy.filters[0]) == {"duration"}


def test_what_a_plugin_builds_is_checked_against_its_kind(plugin_dist):
    policy = _policy({"type": "not_a_filter"})
    with pytest.raises(PluginError, match=r"not_a_filter.*built a object, which is not a Filter"):
        registry.build_pipeline_stages(registry.BuildContext(policy=policy))


def test_naming_a_broken_plugin_says_why(plugin_dist):
    policy = _policy({"type": "exploding"})
    with pytest.raises(PluginError, match=r"exploding.*boom at import"):
        registry.build_pipeline_stages(registry.BuildContext(policy=policy))


def test_a_distribution_named_archiver_is_a_plugin_not_archiver_itself(tmp_path, monkeypatch):
    # `archiver` on PyPI is an unrelated project: its entry points are a plugin's, and
    # only archiver's own distribution (cxone-archiver) brings built-in stage types.
    (tmp_path / "good_plugin.py").write_text(GOOD)
    dist = tmp_path / "archiver-9.9.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: archiver\nVersion: 9.9\n")
    (dist / "entry_points.txt").write_text("[archiver.stages]\nshort_calls = good_plugin:STAGE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reload()
    try:
        loaded = registry.registry()
        assert "short_calls" in loaded.types["filter"]
        assert "short_calls" not in loaded.builtin["filter"]
        assert loaded.builtin["filter"] == {"outcome", "anonymized"}
    finally:
        registry.reload()
        sys.modules.pop("good_plugin", None)

"""Third-party stages come through the `archiver.stages` entry-point group, one by one."""

from __future__ import annotations

import sys
import textwrap

import pytest

from archiver.backends.campaign_archive import parse_record
from archiver.engine import registry
from archiver.engine.pipeline import Pipeline
from archiver.errors import PluginError
from archiver.policy.model import Campaign, Connection, PluginStage, Policy

DIST = "archiver_test_plugins-1.0.dist-info"


@pytest.fixture
def plugin_dist(tmp_path, monkeypatch):
    """A real installed distribution on sys.path declaring three stage plugins."""
    (tmp_path / "good_plugin.py").write_text(
        textwrap.dedent(
            """
            from archiver.engine.records import Decision

            class _ShortCalls:
                name = "short_calls"

                def __init__(self, min_seconds):
                    self.min_seconds = min_seconds

                def check(self, attempt):
                    if attempt.duration < self.min_seconds:
                        return Decision(attempt.id, "skip", "call too short", attempt=attempt)
                    return None

            class ShortCallsPlugin:
                kind = "filter"

                def build(self, options):
                    return _ShortCalls(options.get("min_seconds", 5))
            """
        )
    )
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('boom at import')\n")
    dist = tmp_path / DIST
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: archiver-test-plugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[archiver.stages]\n"
        "short_calls = good_plugin:ShortCallsPlugin\n"
        "exploding = broken_plugin:Plugin\n"
        "not_a_stage = textwrap:dedent\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.plugins.cache_clear()
    yield
    registry.plugins.cache_clear()
    for mod in ("good_plugin", "broken_plugin"):
        sys.modules.pop(mod, None)


def test_broken_plugins_are_reported_by_name_and_others_still_load(plugin_dist):
    loaded = registry.plugins()
    assert "short_calls" in loaded.plugins["filter"]
    assert "boom at import" in loaded.errors["exploding"]
    assert "StagePlugin" in loaded.errors["not_a_stage"]
    assert "short_calls" in registry.known_types("filter")
    assert "exploding" not in registry.known_types("filter")


def test_plugin_filter_runs_in_the_pipeline(plugin_dist):
    policy = Policy(
        name="p",
        connection=Connection(base_url="embedded"),
        campaigns=(Campaign(id="c"),),
        filters=(PluginStage(type="short_calls", options={"min_seconds": 10}),),
    )
    ctx = registry.BuildContext(policy=policy, campaign_id="c")
    pipeline = Pipeline(*registry.build_pipeline_stages(ctx))
    base = {"id": "a", "contactId": "k", "outcomeCode": "X", "disposition": "D", "anonymized": True}
    assert pipeline.decide(parse_record({**base, "duration": 3})).reason == "call too short"
    assert pipeline.decide(parse_record({**base, "duration": 30})).kind == "archive"


def test_naming_a_broken_plugin_says_why(plugin_dist):
    policy = Policy(name="p", connection=Connection(base_url="embedded"), campaigns=(Campaign(id="c"),),
                    filters=(PluginStage(type="exploding"),))
    with pytest.raises(PluginError, match=r"exploding.*boom at import"):
        registry.build_pipeline_stages(registry.BuildContext(policy=policy))

"""Every render is bounded: time, loop iterations, output, the size of what it builds.

Before, a nested loop hung `archiver validate` until it was killed. The subprocess
timeouts below are generous: they stand for "it did not hang", not for a speed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from archiver.errors import TemplateError
from archiver.templates import bounds, compile_template, sample_events
from tests.support import REPO, policy_dict, sim_env, write_policy

CAMPAIGN = "dddddddd-0000-4000-8000-0000000000b1"
EVENTS: dict[str, Any] = {e["event"]: e for e in sample_events()}
HEAD = '{"event": {{ event | tojson }}'
# The loop, size and output bounds are under test here, not the clock: the CLI runs with a
# time bound no busy machine reaches. (A million loop turns, the loop bound, take some
# 0.3 s; the two seconds of the time bound are a few busy processes away.)
UNHURRIED = (
    "import archiver.templates.bounds as bounds; bounds.MAX_RENDER_SECONDS = 120.0; "
    "from archiver.__main__ import main; main()"
)


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``archiver ARGS`` in a subprocess, with the unhurried time bound."""
    return subprocess.run(
        [sys.executable, "-c", UNHURRIED, *args],
        env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO,
    )


def validate(tmp_path: Path, template: str) -> tuple[int, str]:
    (tmp_path / "templates").mkdir(exist_ok=True)
    path = tmp_path / "templates" / "audit.json.j2"
    path.write_text(template)
    doc = policy_dict([CAMPAIGN])
    doc["sinks"] = [{"type": "audit_log", "path": "audit/audit.jsonl",
                     "template": "templates/audit.json.j2"}]
    policy = write_policy(tmp_path / "policy.yaml", doc)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    result = run_cli(["validate", str(policy)], env, timeout=60)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("template", "bound"),
    [
        pytest.param(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
            + HEAD + "}",
            "stopped at the loop bound: more than 1,000,000 loop iterations",
            id="nested-loops",
        ),
        pytest.param(
            HEAD + ', "x": {{ ("x" * 10**9) | length }}}',
            "stopped at the size bound: `*` would make 1,000,000,000 characters",
            id="string-repetition",
        ),
        pytest.param(
            "{% macro down(n) %}{{ down(n + 1) }}{% endmacro %}" + HEAD + ', "x": "{{ down(0) }}"}',
            "stopped at the recursion bound",
            id="recursive-macro",
        ),
        pytest.param(
            HEAD + ', "x": [{% for i in range(100000) %}{% for k, v in policy.items() %}'
            '{{ v | tojson }}, {% endfor %}{% endfor %}0]}',
            "stopped at the output bound: more than 1,048,576 characters (1 MiB) of output",
            id="huge-output-from-the-context",
        ),
    ],
)
def test_validate_stops_a_runaway_template_with_the_bound_it_passed(
    tmp_path: Path, template: str, bound: str
) -> None:
    code, output = validate(tmp_path, template)
    assert code == 78, output
    first = output.splitlines()[0]
    assert first.startswith(f"{tmp_path}/templates/audit.json.j2:"), first
    assert " T003 template fails on a sample `run_started` event: " in first
    assert bound in first, first


def test_a_run_stops_a_template_that_runs_away_on_real_data(tmp_path: Path, start_sim) -> None:
    """Sample events are small; a run's batches are not. The bound holds in the run too."""
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=20)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "audit.json.j2").write_text(
        HEAD + "{% if batch is defined and batch.attempt_ids | length > 3 %}"
        "{% for a in batch.attempt_ids %}{% for i in range(100000) %}{% endfor %}"
        "{% endfor %}{% endif %}}"
    )
    doc = policy_dict([CAMPAIGN])
    doc["sinks"] = [{"type": "audit_log", "path": "audit/audit.jsonl",
                     "template": "templates/audit.json.j2"}]
    policy = write_policy(tmp_path / "policy.yaml", doc)

    checked = run_cli(["validate", str(policy)], sim_env(sim), timeout=60)
    ran = run_cli(["run", str(policy), "--state", str(tmp_path / "state")], sim_env(sim),
                  timeout=120)

    assert checked.returncode == 0, checked.stdout
    assert ran.returncode != 0
    assert "audit.json.j2:1: stopped at the loop bound" in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr


@pytest.fixture
def unhurried(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process renders whose size bound is under test, not the clock: a time bound no
    busy machine reaches (building a hundred thousand strings to join takes some 0.2 s,
    0.5 s on a loaded machine, against the two seconds of the time bound)."""
    monkeypatch.setattr(bounds, "MAX_RENDER_SECONDS", 120.0)


def render(tmp_path: Path, source: str, context: dict[str, Any] | None = None) -> Any:
    path = tmp_path / f"t-{hashlib.sha256(source.encode()).hexdigest()[:12]}.json.j2"
    path.write_text(source)
    return compile_template(path).render_json(context or EVENTS["batch_archived"])


@pytest.mark.parametrize(
    ("expression", "bound"),
    [
        ("'x' * 10**9", "size bound: `*`"),
        ("[1] * 10**9", "size bound: `*`"),
        ("10 ** (10**6)", "number bound: `**`"),
        ("'%0999999999d' % 1", "size bound: a width"),
        ("'%0999999999d' | format(1)", "size bound: a width"),
        ("'{:>999999999}'.format(1)", "size bound: a width"),
        ("'{:{}}'.format(1, 10**9)", "size bound: a nested width"),
        # A nested width is the text of what it names, not only an int argument.
        ("'{:{}}'.format('x', '100000000')", "size bound: a nested width"),
        ("'{:{}}'.format('x', 100000000.0)", "size bound: a nested width"),
        ("'{0:{1[0]}}'.format('x', ['100000000'])", "size bound: a nested width"),
        ("'{a:{w}}'.format_map({'a': 'x', 'w': '100000000'})", "size bound: a nested width"),
        ("'x'.ljust(10**9)", "size bound: `ljust`"),
        ("'x' | center(1000000000)", "size bound: `center`"),
        ("('x' * 1000000) ~ ('x' * 1000000)", "size bound: joining text"),
        ("('x' * 1000000) + ('x' * 1000000)", "size bound: `+`"),
        ("range(100000) | join('x' * 1000)", "size bound: `join`"),
        ("('x' * 1000).join(range(100000) | map('string'))", "size bound: `join`"),
        ("('x' * 2000) | replace('x', 'y' * 1000)", "size bound: `replace`"),
        ("[1] | slice(10**9) | list", "size bound: a `slice` count"),
    ],
)
def test_an_expression_that_would_build_a_huge_value_is_refused_first(
    tmp_path: Path, expression: str, bound: str, unhurried: None
) -> None:
    with pytest.raises(TemplateError) as info:
        render(tmp_path, '{\n"x": {{ (' + expression + ") | length }}\n}")
    assert str(info.value).startswith(f"{info.value.template}:2: stopped at the {bound}")
    assert info.value.template.endswith(".json.j2")
    assert info.value.line == 2


@pytest.mark.parametrize(
    "source",
    [
        # Captured output, a new large string at every turn.
        '{% set b %}{% for i in range(100000) %}{{ "x" * 1000000 }}{% endfor %}{% endset %}{}',
        # A list that grows by a fresh large list at every turn.
        '{% set ns = namespace(l=[]) %}{% for i in range(100000) %}'
        '{% set ns.l = ns.l + [range(100000) | list] %}{% endfor %}{}',
    ],
)
def test_building_large_values_over_and_over_stops_at_the_total(
    tmp_path: Path, source: str, unhurried: None
) -> None:
    with pytest.raises(TemplateError, match="the render built more than 16 MiB"):
        render(tmp_path, source)


def test_a_macro_that_doubles_its_work_stops_at_the_time_bound(tmp_path: Path) -> None:
    source = ("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
              "{% endmacro %}{{ f(60) }}{}")
    with pytest.raises(TemplateError, match="stopped at the time bound: rendering took more "
                                            "than 2 s"):
        render(tmp_path, source)


def test_the_bound_error_names_the_template_and_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bounds, "MAX_RENDER_SECONDS", 120.0)  # the loop bound is under test
    path = tmp_path / "t.json.j2"
    path.write_text('{\n"a": 1,\n{% for i in range(100000) %}{% for j in range(100000) %}'
                    '{% endfor %}{% endfor %}\n"b": 2}')
    with pytest.raises(TemplateError) as info:
        compile_template(path).render_json({})
    assert str(info.value).startswith(f"{path}:3: stopped at the loop bound")


def test_a_well_behaved_template_with_loops_is_unaffected(tmp_path: Path) -> None:
    source = (
        '{"ids": [{% for a in batch.attempt_ids %}{{ a | tojson }}'
        '{% if not loop.last %}, {% endif %}{% endfor %}],'
        ' "n": {{ range(1000) | sum }}, "label": {{ ("batch " ~ batch.id) | tojson }},'
        ' "days": {{ batch.retention_days | dictsort | map("first") | join(",") | tojson }}}'
    )
    assert render(tmp_path, source) == {
        "ids": ["a-1", "a-2", "a-3"], "n": 499500, "label": "batch batch-sample",
        "days": "30,365",
    }


def test_each_render_has_its_own_budget_across_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three renders of 400,000 iterations at once: 1,200,000 together, each within bound."""
    monkeypatch.setattr(bounds, "MAX_RENDER_SECONDS", 120.0)  # the loop bound is under test
    path = tmp_path / "t.json.j2"
    path.write_text("{% for i in range(100000) %}{% for j in range(4) %}{% endfor %}"
                    "{% endfor %}{{ n }}")
    template = compile_template(path)
    results: dict[int, Any] = {}

    def work(n: int) -> None:
        try:
            results[n] = template.render_json({"n": n})
        except TemplateError as err:
            results[n] = err

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {0: 0, 1: 1, 2: 2}

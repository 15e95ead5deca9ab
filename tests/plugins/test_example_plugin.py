"""The example plugin package (examples/plugins) installed into a fresh virtualenv, as a
third party would install it, and a policy using its stages run end to end against the
built-in simulator through real sockets; then the package's own tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "examples" / "plugins"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with archiver and the plugin installed by pip, nothing else."""
    where = tmp_path_factory.mktemp("fresh") / "venv"
    venv.EnvBuilder(with_pip=True).create(where)
    python = where / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(REPO), str(PLUGIN), "pytest"],
                   check=True, timeout=600, capture_output=True)
    return where


def _run(fresh: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    env["PYTHONPATH"] = ""  # only what pip installed in the fresh virtualenv
    return subprocess.run([str(fresh / "bin" / "archiver"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.timeout(900)
def test_the_example_plugin_runs_from_a_fresh_virtualenv(fresh: Path, tmp_path: Path) -> None:
    example = tmp_path / "repo"
    shutil.copytree(PLUGIN / "example", example, ignore=shutil.ignore_patterns("out"))
    policy = example / "policy.yaml"

    validated = _run(fresh, "validate", str(policy), cwd=tmp_path)
    assert validated.returncode == 0, validated.stderr
    report_path = tmp_path / "report.json"
    ran = _run(fresh, "run", str(policy), "--state", str(tmp_path / "state"),
               "--report", str(report_path), cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "failed 0" in ran.stdout + ran.stderr

    # The filter skipped exactly the three listed contacts, with its reason ...
    report = json.loads(report_path.read_text())
    [campaign] = report["campaigns"]
    dnc = [r for r in campaign["reasons"] if r["reason"] == "contact is on the do-not-call list"]
    assert dnc == [{"state": "skipped", "reason": "contact is on the do-not-call list", "count": 3}]
    # ... and the sink got every batch and the run's end, once each.
    lines = [json.loads(line) for line in (example / "out" / "events.jsonl").read_text().splitlines()]
    kinds = [line["event"] for line in lines]
    assert kinds[-1] == "run_finished" and set(kinds) == {"batch_archived", "run_finished"}
    assert len({line["event_id"] for line in lines}) == len(lines)
    finished = lines[-1]["counts"]
    assert finished["archived"] == report["totals"]["archived"] > 0
    # One event per archive batch (at most 200 attempts each).
    assert kinds.count("batch_archived") == -(-report["totals"]["archived"] // 200)


@pytest.mark.timeout(900)
def test_a_plugin_option_error_points_at_its_line(fresh: Path, tmp_path: Path) -> None:
    example = tmp_path / "repo"
    shutil.copytree(PLUGIN / "example", example, ignore=shutil.ignore_patterns("out"))
    policy = example / "policy.yaml"
    text = policy.read_text()
    policy.write_text(text.replace("path: dnc.csv", "path: ../../etc/dnc.csv")
                      .replace("events: [batch_archived, run_finished]",
                               "events: [batch_archived, run_finish]"))
    lines = policy.read_text().splitlines()
    checked = _run(fresh, "validate", str(policy), cwd=tmp_path)
    assert checked.returncode == 78, checked.stdout + checked.stderr
    out = checked.stdout + checked.stderr
    dnc_line = next(i for i, line in enumerate(lines, 1) if "etc/dnc.csv" in line)
    events_line = next(i for i, line in enumerate(lines, 1) if "run_finish]" in line)
    assert f"policy.yaml:{dnc_line}:" in out and "outside" in out
    assert f"policy.yaml:{events_line}:" in out and "unknown event `run_finish`" in out


@pytest.mark.timeout(900)
def test_the_plugin_packages_own_tests_pass(fresh: Path) -> None:
    done = subprocess.run([str(fresh / "bin" / "python"), "-m", "pytest", "-q",
                           "-p", "no:cacheprovider", "tests"], cwd=PLUGIN,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_the_plugin_is_not_importable_here() -> None:
    # The suite's own interpreter never saw the plugin: what passes above passed there.
    assert subprocess.run([sys.executable, "-c", "import archiver_dnc"],
                          capture_output=True).returncode != 0


def test_the_readme_section_is_the_packages_readme() -> None:
    readme = (REPO / "README.md").read_text()
    package = (PLUGIN / "README.md").read_text()
    assert package.startswith("## Writing a plugin\n")
    start = readme.index("## Writing a plugin\n")
    assert readme[start:start + len(package)] == package

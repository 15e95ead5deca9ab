"""The deployment files are checked by the tools that consume them, as far as this
machine can run them: pre-commit itself, GitHub's workflow schema, hadolint, the
Kubernetes API schemas, systemd's own verifier, and the diff script run for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import REPO

BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert found, f"{name} is not installed (it is in the test extra)"
    return found


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def _policy_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "policy-repo"
    shutil.copytree(REPO / "policies", repo / "policies", ignore=shutil.ignore_patterns(".archiver", "audit"))
    _git(repo.parent, "init", "-q", str(repo))
    _git(repo, "config", "user.email", "reviewer@example.com")
    _git(repo, "config", "user.name", "Reviewer")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    return repo


def test_the_pre_commit_manifest_is_what_pre_commit_loads():
    from pre_commit.clientlib import load_manifest

    hooks = {h["id"]: h for h in load_manifest(str(REPO / ".pre-commit-hooks.yaml"))}
    assert set(hooks) == {"archiver-validate", "archiver-test"}
    assert hooks["archiver-validate"]["entry"] == "archiver validate"
    assert hooks["archiver-test"]["entry"] == "archiver test"


@pytest.mark.timeout(600)
def test_the_hooks_run_from_a_policy_repository_and_catch_a_broken_policy(tmp_path):
    # As the manifest's header tells a policy repository to use them: its own
    # .pre-commit-config.yaml names this repository at a commit. The hooks' environment is
    # installed once and reused by the second run (try-repo installs it anew each time).
    repo = _policy_repo(tmp_path)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    head = _git(REPO, "rev-parse", "HEAD").strip()
    config = {"repos": [{"repo": str(REPO), "rev": head,
                         "hooks": [{"id": "archiver-validate"}, {"id": "archiver-test"}]}]}
    (repo / ".pre-commit-config.yaml").write_text(json.dumps(config))
    _git(repo, "add", ".pre-commit-config.yaml")
    _git(repo, "commit", "-qm", "hooks")

    def run_hooks(*hook: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_tool("pre-commit"), "run", *hook, "--all-files"],
            cwd=repo, env=env, capture_output=True, text=True, timeout=540,
        )

    good = run_hooks()
    assert good.returncode == 0, good.stdout + good.stderr
    assert "archiver validate" in good.stdout and "archiver test" in good.stdout
    assert good.stdout.count("Passed") == 2, good.stdout

    policy = repo / "policies" / "survey-retention.yaml"
    policy.write_text(policy.read_text().replace("max_items: 200", "max_item: 200"))
    bad = run_hooks("archiver-validate")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "policies/survey-retention.yaml:" in bad.stdout and "max_item" in bad.stdout


def test_the_workflow_is_a_valid_github_workflow():
    result = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
         str(REPO / "deploy/github/archiver-policies.yml")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflow_runs_the_commands_the_readme_names():
    text = (REPO / "deploy/github/archiver-policies.yml").read_text()
    for command in ("archiver validate --format github policies/", "archiver test policies/",
                    "policy-diff.sh"):
        assert command in text


def test_the_diff_script_summarises_what_each_changed_policy_alters(tmp_path):
    repo = _policy_repo(tmp_path)
    policy = repo / "policies" / "survey-retention.yaml"
    policy.write_text(policy.read_text().replace("days: 730", "days: 700"))
    (repo / "policies" / "new-policy.yaml").write_text(
        (repo / "policies" / "survey-retention.yaml").read_text()
    )
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "change")
    summary = tmp_path / "summary.md"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary),
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", str(REPO / "deploy/github/policy-diff.sh"), "HEAD~1"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = summary.read_text()
    assert "### `policies/survey-retention.yaml`" in text
    assert "retention 730->700" in text
    assert "### `policies/new-policy.yaml`" in text and "A new policy" in text
    assert "sales-callbacks" not in text  # unchanged policies are left out


def test_the_diff_script_on_stdout_keeps_what_its_caller_wrote_around_it(tmp_path):
    """Before, it reopened /dev/stdout for each line: written into a file the caller had
    opened, its lines overwrote the caller's from the start of the file."""
    repo = _policy_repo(tmp_path)
    policy = repo / "policies" / "survey-retention.yaml"
    policy.write_text(policy.read_text().replace("days: 730", "days: 700"))
    _git(repo, "commit", "-qam", "change")
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    script = REPO / "deploy/github/policy-diff.sh"
    out = tmp_path / "out.md"
    subprocess.run(
        ["bash", "-c", f'{{ echo "# report"; bash {script} HEAD~1; echo END; }} > {out}'],
        cwd=repo, env=env, check=True, timeout=300,
    )
    lines = out.read_text().splitlines()
    assert lines[0] == "# report" and lines[-1] == "END", lines
    assert lines[1] == "## Policy changes against HEAD~1"
    assert any("retention 730->700" in line for line in lines)


def test_the_workflow_names_no_package_it_would_install_by_default():
    """`archiver` on PyPI is an unrelated project: the install step must be told where
    archiver comes from, and says so when it is not."""
    workflow = yaml.safe_load((REPO / "deploy/github/archiver-policies.yml").read_text())
    job = workflow["jobs"]["review"]
    assert job["env"]["ARCHIVER_PACKAGE"] == "${{ vars.ARCHIVER_PACKAGE }}"
    [install] = [step for step in job["steps"] if step.get("name") == "Install archiver"]
    result = subprocess.run(["bash", "-ec", install["run"]], capture_output=True, text=True,
                            env={**os.environ, "ARCHIVER_PACKAGE": ""})
    assert result.returncode == 1
    assert "set the repository variable ARCHIVER_PACKAGE" in result.stdout


def test_the_dockerfile_passes_hadolint():
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", str(REPO / "Dockerfile")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["archiver"]' in text
    assert "USER 10001" in text  # not root


def test_everything_that_installs_archiver_by_name_uses_its_distribution_name():
    # `archiver` on PyPI is an unrelated project: nothing may ask pip for that name.
    import tomllib

    name = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"]
    assert name == "cxone-archiver"
    from archiver.stages.registry import OWN_DISTRIBUTION

    assert name == OWN_DISTRIBUTION  # whose entry points are the built-in stage types
    plugin = tomllib.loads((REPO / "examples/plugins/pyproject.toml").read_text())
    assert plugin["project"]["dependencies"] == [name]
    install = [line for line in (REPO / "Dockerfile").read_text().splitlines()
               if "pip install" in line]
    assert install == [f"RUN pip install --no-index --find-links /wheels {name} \\"]


def test_the_cronjob_is_valid_for_kubernetes_and_runs_one_at_a_time():
    import yaml

    path = REPO / "deploy/kubernetes/cronjob.yaml"
    result = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    docs = {d["kind"]: d for d in yaml.safe_load_all(path.read_text())}
    spec = docs["CronJob"]["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert "--metrics" in pod["containers"][0]["args"]


def test_everything_the_cronjobs_run_writes_is_on_a_writable_volume():
    # readOnlyRootFilesystem: only writable volume mounts take writes. The run writes its
    # report, metrics, the policy's audit logs, and (checking an approval's SSH signature)
    # a temporary file in /tmp (TMPDIR is not set).
    from archiver.audit.digest import digest_folder
    from archiver.policy import load_policy

    docs = {d["kind"]: d for d in yaml.safe_load_all(
        (REPO / "deploy/kubernetes/cronjob.yaml").read_text())}
    pod = docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "TMPDIR" not in {e["name"] for e in container.get("env", [])}
    writable = [Path(m["mountPath"]) for m in container["volumeMounts"] if not m.get("readOnly")]
    args = container["args"]
    policy_path = Path(args[1])
    written = [Path(args[args.index(option) + 1]) for option in ("--report", "--metrics")]
    written.append(Path("/tmp/archiver-approval-x/approval.sig"))  # governance.approval
    for sink in load_policy(REPO / "policies" / policy_path.name).sinks:
        if sink.type == "audit_log":
            log = policy_path.parent / sink.options.path
            written += [log, digest_folder(log)]
    outside = [str(path) for path in written
               if not any(path.is_relative_to(root) for root in writable)]
    assert outside == []


def test_everything_a_systemd_run_writes_is_under_its_read_write_paths():
    # ProtectSystem=strict mounts the whole file system read-only but for ReadWritePaths
    # and the StateDirectory: a path a run writes outside them fails only in production.
    import shlex

    from archiver.audit.digest import digest_folder
    from archiver.policy import load_policy

    unit: dict[str, str] = {}
    for line in (REPO / "deploy/systemd/archiver@.service").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            unit[key] = value
    assert unit["ProtectSystem"] == "strict"
    writable = [Path(p) for p in unit["ReadWritePaths"].split()]
    writable.append(Path("/var/lib") / unit["StateDirectory"])
    workdir = Path(unit["WorkingDirectory"])
    policies = sorted(p for p in (REPO / "policies").glob("*.yaml")
                      if not p.name.endswith(".test.yaml"))
    assert policies
    for policy_file in policies:
        argv = shlex.split(unit["ExecStart"].replace("%i", policy_file.stem))
        assert argv[2] == f"policies/{policy_file.name}"
        written = [Path(argv[argv.index(option) + 1])
                   for option in ("--state", "--report", "--metrics")]
        here = (workdir / argv[2]).parent  # where the policy's relative paths start
        for sink in load_policy(policy_file).sinks:
            path = getattr(sink.options, "path", None)
            if sink.type == "audit_log":
                log = here / path
                written += [log, digest_folder(log)]  # --signing-key digests beside it
            elif sink.type == "file":
                written.append(here / path.split("{", 1)[0])
        outside = [str(path) for path in written
                   if not any(path.is_relative_to(root) for root in writable)]
        assert outside == [], f"{policy_file.name} writes outside ReadWritePaths"


def test_the_systemd_units_pass_systemd_analyze(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not on this machine")
    for unit in ("archiver@.service", "archiver@.timer"):
        shutil.copy(REPO / "deploy/systemd" / unit, tmp_path / unit.replace("@", "@nightly"))
    result = subprocess.run(
        [analyze, "verify", "--man=no", "archiver@nightly.service", "archiver@nightly.timer"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    # The one complaint expected here: archiver is not installed at /usr/local/bin.
    problems = [
        line for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "/usr/local/bin/archiver is not executable" not in line
    ]
    assert problems == []

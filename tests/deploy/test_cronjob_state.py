"""The Kubernetes CronJob keeps its state store in PostgreSQL, its URL in a Secret;
the one volume holds only what must stay on disk (the policy repository copy with its
audit log). kubernetes-validate --strict checks the file in test_deploy_files.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support import REPO


def test_the_cronjob_reads_its_state_store_url_from_a_secret_and_keeps_no_state_folder():
    docs = list(yaml.safe_load_all((REPO / "deploy/kubernetes/cronjob.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "CronJob")
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "--state" not in container["args"]
    env = {e["name"]: e for e in container.get("env", [])}
    ref = env["ARCHIVER_STATE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "archiver-state", "key": "url"}
    assert "value" not in env["ARCHIVER_STATE_URL"], "the URL (a password) is never inline"
    claims = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    assert [c["metadata"]["name"] for c in claims] == ["archiver-repo"]
    mounted = {v["name"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert mounted == {"repo"}
    policy = container["args"][1]
    assert policy.startswith("/var/lib/archiver/repo/"), "the policy (and its audit log) on the volume"


def test_the_init_container_lays_out_a_policy_that_validates(tmp_path):
    """What `kubectl create configmap --from-file=DIR` holds (DIR's files, no subfolders)
    mounted where the CronJob mounts each ConfigMap, then the init container's own
    command: the policy it copies must find its templates. Before, one ConfigMap of
    policies/ lost policies/templates/ and the run refused its policy (T001)."""
    docs = list(yaml.safe_load_all((REPO / "deploy/kubernetes/cronjob.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "CronJob")
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    [init] = pod["initContainers"]
    script = init["command"][-1]
    header = (REPO / "deploy/kubernetes/cronjob.yaml").read_text()
    for mount in init["volumeMounts"]:
        if mount["name"] not in volumes or "configMap" not in volumes[mount["name"]]:
            continue
        configmap = volumes[mount["name"]]["configMap"]["name"]
        # The folder the documented `kubectl create configmap NAME --from-file=DIR` names.
        [source] = [line.split("--from-file=")[1].strip() for line in header.splitlines()
                    if f"configmap {configmap} " in line]
        target = tmp_path / mount["mountPath"].lstrip("/")
        target.mkdir(parents=True)
        for item in (REPO / source).iterdir():
            if item.is_file():
                shutil.copy(item, target / item.name)
        script = script.replace(mount["mountPath"] + "/", f"{target}/")
    script = script.replace("/var/lib/archiver", str(tmp_path / "var"))
    subprocess.run(["sh", "-c", script], check=True)

    policy = Path(pod["containers"][0]["args"][1].replace("/var/lib/archiver",
                                                            str(tmp_path / "var")))
    checked = subprocess.run(
        [sys.executable, "-m", "archiver", "validate", str(policy)],
        capture_output=True, text=True, env={**os.environ}, cwd=tmp_path,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

"""The Kubernetes CronJob keeps its state store in PostgreSQL, its URL in a Secret;
the one volume holds only what must stay on disk (the policy repository copy with its
audit log). kubernetes-validate --strict checks the file in test_deploy_files.py."""

from __future__ import annotations

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

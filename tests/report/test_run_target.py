"""Every run names its target, and a state folder belongs to one target.

``archiver run`` as users run it (a subprocess) against simulators on loopback ports:
the target (backend, host actually used, tenant) is in the state store, the report,
every audit line and webhook, ``archiver runs`` and ``runs show``; a second target on
the same state folder is refused with exit 78 before any request.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from archiver.simulator import Simulator
from tests.support import (
    REPO,
    demo_at_test_pace,
    policy_dict,
    run_cli,
    sim_env,
    write_policy,
)

CAMPAIGN = "7a96c0de-0000-4000-8000-0000000000a1"


def policy_with_sinks(tmp_path: Path, sim: Simulator) -> Path:
    doc = policy_dict([CAMPAIGN])
    doc["sinks"] = [
        {"type": "webhook", "url": sim.webhook_url, "secret_env": "DW_WEBHOOK_SECRET"},
        {"type": "audit_log", "path": "audit/audit.jsonl"},
    ]
    return write_policy(tmp_path / "policy.yaml", doc)


def target_of(sim: Simulator) -> dict[str, Any]:
    return {"backend": "campaign-archive", "host": urlsplit(sim.base_url).netloc, "tenant": None}


def test_a_run_records_its_target_everywhere(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=300, seed=11)
    policy = policy_with_sinks(tmp_path, sim)
    state, report_path = tmp_path / "state", tmp_path / "report.json"
    env = sim_env(sim)

    result = run_cli(["run", str(policy), "--state", str(state), "--report", str(report_path)], env)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = target_of(sim)
    assert expected["host"].startswith("127.0.0.1:")

    report = json.loads(report_path.read_text())
    assert report["target"] == expected
    audit = [json.loads(line) for line in (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()]
    assert {line["event"] for line in audit} == {"run_started", "batch_archived", "run_finished"}
    assert all(line["target"] == expected for line in audit)
    hooks = sim.webhooks()
    assert hooks and all(hook["body"]["target"] == expected for hook in hooks)

    with sqlite3.connect(state / "state.db") as db:
        [(recorded,)] = db.execute("SELECT target FROM runs").fetchall()
        [(bound,)] = db.execute("SELECT value FROM store_meta WHERE key = 'target'").fetchall()
    assert json.loads(recorded) == json.loads(bound) == expected

    listed = run_cli(["runs", "--state", str(state), "--format", "json"], env)
    assert [row["target"] for row in json.loads(listed.stdout)] == [expected]
    table = run_cli(["runs", "--state", str(state)], env)
    assert expected["host"] in table.stdout
    shown = run_cli(["runs", "--state", str(state), "show", report["run_id"]], env)
    assert json.loads(shown.stdout)["target"] == expected


def test_a_state_folder_refuses_another_target_before_any_request(tmp_path, start_sim):
    first = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=100, seed=12)
    other = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=100, seed=12)
    policy = write_policy(tmp_path / "policy.yaml", policy_dict([CAMPAIGN]))
    state = tmp_path / "state"
    done = run_cli(["run", str(policy), "--state", str(state)], sim_env(first))
    assert done.returncode == 0, done.stderr[-3000:]
    first_host, other_host = target_of(first)["host"], target_of(other)["host"]

    refused = run_cli(["run", str(policy), "--state", str(state)], sim_env(other))
    assert refused.returncode == 78, refused.stderr[-3000:]
    [line] = [x for x in refused.stderr.splitlines() if "error" in x]
    assert first_host in line and other_host in line and "--state" in line
    assert "Traceback" not in refused.stderr
    assert other.stats()["total_requests"] == 0, "not even a token was asked for"

    # The built-in simulator is another target too: it never shares a real tenant's store.
    embedded_env = {k: v for k, v in sim_env(first).items() if k != "CXONE_BASE_URL"}
    refused = run_cli(["run", str(policy), "--state", str(state)], embedded_env)
    assert refused.returncode == 78, refused.stderr[-3000:]
    assert "embedded" in refused.stderr and first_host in refused.stderr

    # The folder is still the first target's.
    again = run_cli(["run", str(policy), "--state", str(state)], sim_env(first))
    assert again.returncode == 0, again.stderr[-3000:]
    runs = json.loads(run_cli(["runs", "--state", str(state), "--format", "json"], sim_env(first)).stdout)
    assert [r["target"]["host"] for r in runs] == [first_host, first_host]


def test_metrics_totals_never_decrease_and_an_embedded_run_is_no_success(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=400, seed=13)
    policy = write_policy(tmp_path / "policy.yaml", policy_dict([CAMPAIGN]))
    state, metrics = tmp_path / "state", tmp_path / "archiver.prom"
    files: list[str] = []
    for _ in range(2):  # the second run finds nothing left to archive
        result = run_cli(
            ["run", str(policy), "--state", str(state), "--metrics", str(metrics)], sim_env(sim)
        )
        assert result.returncode == 0, result.stderr[-3000:]
        files.append(metrics.read_text())
    before, after = (parse(text) for text in files)
    host = target_of(sim)["host"]
    archived = ("archiver_archived_attempts_total", (("backend", "campaign-archive"),
                ("campaign", CAMPAIGN), ("host", host), ("policy", "test-policy")))
    assert before[archived][1] > 0
    for key, (kind, value) in before.items():
        if key[0].endswith("_total"):
            assert kind == "counter", key
            assert after[key][1] >= value, key
    per_run = [v for k, (kind, v) in after.items()
               if k[0] == "archiver_run_attempts" and ("state", "archived") in k[1]]
    assert per_run == [0] and after[archived][1] == before[archived][1]
    assert any(k[0] == "archiver_last_success_timestamp_seconds" for k in after)

    # The demo policy runs against the built-in simulator: labelled so, never a success.
    embedded = tmp_path / "embedded.prom"
    # The demo writes its audit log beside itself: run a copy.
    shutil.copytree(REPO / "examples", tmp_path / "demo", ignore=shutil.ignore_patterns("audit"))
    demo_at_test_pace(tmp_path / "demo" / "demo.yaml")
    demo = run_cli(
        ["run", str(tmp_path / "demo" / "demo.yaml"), "--state", str(tmp_path / "demo-state"),
         "--metrics", str(embedded)],
        {k: v for k, v in sim_env(sim).items() if not k.startswith("CXONE_")},
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    got = parse(embedded.read_text())
    assert not [k for k in got if k[0] == "archiver_last_success_timestamp_seconds"]
    assert {dict(labels)["host"] for _, labels in got} == {"embedded"}


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, float]]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = (family.type, s.value)
    return out

"""A run refused before it has a report (credentials refused at login) still updates
the metrics file: an alert on the last run's exit code must not keep seeing the 0 of
the run before."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support import policy_dict, run_cli, sim_env, write_policy

CAMPAIGN = "5a1e0c2d-0000-4000-8000-00000000000c"


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }


def named(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str
          ) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (n, labels), value in found.items() if n == name}


def test_refused_credentials_set_the_last_exit_code_and_keep_the_counters(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=200, seed=5)
    policy = write_policy(tmp_path / "policy.yaml", policy_dict([CAMPAIGN]))
    state, metrics = tmp_path / "state", tmp_path / "run.prom"
    args = ["run", str(policy), "--state", str(state), "--metrics", str(metrics)]
    first = run_cli(args, sim_env(sim))
    assert first.returncode == 0, first.stderr[-2000:]
    before = samples(metrics)
    assert set(named(before, "archiver_last_run_exit_code").values()) == {0}
    stamp_before = max(named(before, "archiver_last_run_timestamp_seconds").values())
    counters = {k: v for k, v in before.items() if k[0].endswith("_total")}
    assert counters and any(v > 0 for v in counters.values())

    refused = run_cli(args, sim_env(sim, CXONE_CLIENT_SECRET="not-the-secret"))
    assert refused.returncode == 78, refused.stderr[-2000:]
    assert "credentials refused" in refused.stderr
    after = samples(metrics)
    assert set(named(after, "archiver_last_run_exit_code").values()) == {78}
    assert max(named(after, "archiver_last_run_timestamp_seconds").values()) > stamp_before
    # Counters never go back or vanish: the running totals are read from the store again.
    assert {k: v for k, v in after.items() if k[0].endswith("_total")} == counters
    # A refused run is no success.
    assert named(after, "archiver_last_success_timestamp_seconds") == named(
        before, "archiver_last_success_timestamp_seconds")


def test_refused_credentials_on_a_first_run_write_metrics_without_totals(tmp_path, start_sim):
    sim = start_sim(campaign_ids=[CAMPAIGN], attempts_per_campaign=20, seed=5)
    policy = write_policy(tmp_path / "policy.yaml", policy_dict([CAMPAIGN]))
    metrics = tmp_path / "run.prom"
    refused = run_cli(["run", str(policy), "--state", str(tmp_path / "state"),
                       "--metrics", str(metrics)],
                      sim_env(sim, CXONE_CLIENT_SECRET="not-the-secret"))
    assert refused.returncode == 78, refused.stderr[-2000:]
    found = samples(metrics)
    assert set(named(found, "archiver_last_run_exit_code").values()) == {78}

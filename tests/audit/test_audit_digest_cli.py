"""Runs sign their audit log with ARCHIVER_SIGNING_KEY; `audit verify --public-key`
then catches, offline, what the chain and the state folder cannot."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from archiver.audit.chain import GENESIS_HASH, line_hash
from tests.support import REPO, demo_at_test_pace, ed25519_key_pair, run_cli

LOG = "examples/audit/demo-audit.jsonl"


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> tuple[Path, Path]:
    return ed25519_key_pair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def signed(tmp_path_factory, keys) -> Path:
    """Two demo runs, each signed; the pristine folder is copied by each test."""
    repo = tmp_path_factory.mktemp("repo")
    shutil.copytree(REPO / "examples", repo / "examples",
                    ignore=shutil.ignore_patterns(".archiver", "audit"))
    demo_at_test_pace(repo / "examples" / "demo.yaml")
    env = _env(ARCHIVER_SIGNING_KEY=str(keys[0]))
    for _ in range(2):
        result = run_cli(["run", "examples/demo.yaml", "--state", str(repo / "state"), "--quiet"],
                         env, cwd=repo)
        assert result.returncode == 0, result.stderr
    return repo


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CXONE_", "ARCHIVER_"))}
    env.update(extra)
    return env


@pytest.fixture
def repo(signed, tmp_path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(signed, copy)
    return copy


def _verify(repo: Path, public: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(["audit", "verify", LOG, "--public-key", str(public), *extra], _env(),
                   cwd=repo)


def _digests(repo: Path) -> list[Path]:
    return sorted((repo / (LOG + ".digests")).iterdir())


def test_each_run_writes_a_signed_digest_and_an_untouched_log_verifies(repo, keys):
    assert len(_digests(repo)) == 2
    result = _verify(repo, keys[1])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 signed digest(s) verified" in result.stdout


def test_a_cut_tail_is_caught_even_after_another_run(repo, keys):
    log = repo / LOG
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:-3]))
    result = _verify(repo, keys[1])
    assert result.returncode == 1
    assert "lines were cut off the end" in result.stdout
    # Like every broken chain, it names a line: the first one missing.
    assert result.stdout.startswith(f"{LOG}:{len(lines) - 2}: "), result.stdout
    as_json = json.loads(_verify(repo, keys[1], "--format", "json").stdout)
    assert (as_json["ok"], as_json["first_bad_line"]) == (False, len(lines) - 2)


def test_a_consistent_rechain_of_log_and_store_is_caught(repo, keys):
    log = repo / LOG
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    lines[1]["attempt_ids"] = lines[1]["attempt_ids"][1:]  # hide an archived attempt
    prev = GENESIS_HASH
    for line in lines:
        line["prev_hash"] = prev
        line["hash"] = prev = line_hash(line)
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    shutil.rmtree(repo / "state")  # the store's receipts go too: nothing else to compare
    plain = run_cli(["audit", "verify", LOG], _env(), cwd=repo)
    assert plain.returncode == 0  # the chain alone cannot tell
    result = _verify(repo, keys[1])
    assert result.returncode == 1
    assert "another hash than digest" in result.stdout
    # The first line whose hash a digest signed and that has another now: the rewrite is
    # there or before it.
    first = json.loads(_digests(repo)[0].read_text())["last_seq"]
    assert first < len(lines)
    assert result.stdout.startswith(f"{LOG}:{first}: "), result.stdout


def test_a_key_given_twice_in_a_line_is_caught(repo, keys):
    """A line whose ``attempt_ids`` is given twice hashes as its last value says, so the
    chain held while a reader keeping the first value (or a grep) saw no attempt at all."""
    log = repo / LOG
    lines = log.read_bytes().splitlines(keepends=True)
    assert b'"attempt_ids":[' in lines[1]
    lines[1] = lines[1].replace(b'"attempt_ids":[', b'"attempt_ids":[],"attempt_ids":[', 1)
    log.write_bytes(b"".join(lines))
    for extra in ((), ("--public-key", str(keys[1]))):
        result = run_cli(["audit", "verify", LOG, *extra], _env(), cwd=repo)
        assert result.returncode == 1, result.stdout
        assert result.stdout.startswith(f"{LOG}:2: duplicate key `attempt_ids`"), result.stdout


def test_another_logs_signed_digests_do_not_vouch_for_this_one(repo, keys):
    """Two policies, one signing key: each log's digests name it. A log replaced by the
    other one, digests and all, is a genuinely signed chain, but not this log's."""
    demo = (repo / "examples" / "demo.yaml").read_text()
    other_log = "audit/other-audit.jsonl"
    assert "audit/demo-audit.jsonl" in demo
    other = repo / "examples" / "other.yaml"
    other.write_text(demo.replace("name: demo", "name: other", 1)
                     .replace("audit/demo-audit.jsonl", other_log, 1))
    result = run_cli(["run", "examples/other.yaml", "--state", str(repo / "other-state"),
                      "--quiet"], _env(ARCHIVER_SIGNING_KEY=str(keys[0])), cwd=repo)
    assert result.returncode == 0, result.stderr
    log, source = repo / LOG, repo / "examples" / other_log
    shutil.rmtree(repo / (LOG + ".digests"))
    shutil.copytree(source.with_name(source.name + ".digests"), repo / (LOG + ".digests"))
    shutil.copyfile(source, log)
    assert run_cli(["audit", "verify", "examples/" + other_log, "--public-key", str(keys[1])],
                   _env(), cwd=repo).returncode == 0
    checked = _verify(repo, keys[1])
    assert checked.returncode == 1, checked.stdout
    assert "signs the log other-audit.jsonl, not demo-audit.jsonl" in checked.stdout


def test_a_state_store_that_never_wrote_the_log_says_so(repo):
    """The store's receipts name the log where the runs wrote it: a copy elsewhere (here
    the whole repository, moved) is one it knows nothing of, so --state checked no end."""
    log = repo / LOG
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:-3]))  # a cut tail --state would catch in place
    result = run_cli(["audit", "verify", LOG, "--state", "state"], _env(), cwd=repo)
    assert result.returncode == 0, result.stdout
    assert "the state store has no record of writing this file" in result.stdout, result.stdout


def test_a_deleted_digest_is_caught(repo, keys):
    _digests(repo)[0].unlink()
    result = _verify(repo, keys[1])
    assert result.returncode == 1
    assert "does not follow" in result.stdout


def test_the_last_digest_deleted_leaves_lines_uncovered(repo, keys):
    _digests(repo)[-1].unlink()
    result = _verify(repo, keys[1])
    assert result.returncode == 1
    assert "are not covered by a signed digest" in result.stdout


def test_a_replaced_digest_is_caught(repo, keys, tmp_path):
    other, _ = ed25519_key_pair(tmp_path)
    last = _digests(repo)[-1]
    last.unlink()
    # A third run signed with another key stands in for the deleted digest.
    result = run_cli(["run", "examples/demo.yaml", "--state", str(repo / "state"), "--quiet"],
                     _env(ARCHIVER_SIGNING_KEY=str(other)), cwd=repo)
    assert result.returncode == 0, result.stderr
    checked = _verify(repo, keys[1])
    assert checked.returncode == 1
    assert "signed with another key" in checked.stdout


def test_a_bad_signing_key_stops_the_run_before_any_request(tmp_path, keys):
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "examples", repo / "examples",
                    ignore=shutil.ignore_patterns(".archiver", "audit"))
    result = run_cli(["run", "examples/demo.yaml", "--state", str(repo / "state")],
                     _env(ARCHIVER_SIGNING_KEY=str(keys[1])), cwd=repo)
    assert result.returncode == 78
    assert "is not an unencrypted PEM private key" in result.stderr
    assert not (repo / "state").exists()


def test_lines_of_a_run_not_ended_read_as_unsigned_and_say_so_until_a_run_signs(repo, keys):
    # A run signs the lines it wrote when it ends: mid-run (here killed, which leaves the
    # log as a run still going would), its lines are not covered yet, and the message
    # says that a run may still be writing, beside a deleted digest or a stopped run.
    killed = run_cli(["run", "examples/demo.yaml", "--state", str(repo / "state"), "--quiet"],
                     _env(ARCHIVER_SIGNING_KEY=str(keys[0]),
                          ARCHIVER_FAILPOINT="event_delivered:1"), cwd=repo)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    result = _verify(repo, keys[1])
    assert result.returncode == 1, result.stdout
    assert "are not covered by a signed digest" in result.stdout, result.stdout
    assert "or a run writing to the log has not ended yet (check again once it has)" \
        in result.stdout, result.stdout
    again = run_cli(["run", "examples/demo.yaml", "--state", str(repo / "state"), "--quiet"],
                    _env(ARCHIVER_SIGNING_KEY=str(keys[0])), cwd=repo)
    assert again.returncode == 0, again.stdout + again.stderr
    result = _verify(repo, keys[1])
    assert result.returncode == 0, result.stdout
    assert "3 signed digest(s) verified" in result.stdout, result.stdout
